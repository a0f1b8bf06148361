import QSSHTools

ToolMain.run(QSSHCommand.self, name: "qssh", failureStatus: 255)
