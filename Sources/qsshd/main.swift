import QSSHTools

ToolMain.run(QSSHDCommand.self, name: "qsshd")
