import QSSHTools

ToolMain.run(QSFTPCommand.self, name: "qsftp", failureStatus: 1)
