import QSSHTools

ToolMain.run(QNSPToolCommand.self, name: "qnsp", failureStatus: 255)
