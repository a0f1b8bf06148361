import QSSHTools

ToolMain.run(QSCPCommand.self, name: "qscp", failureStatus: 1)
