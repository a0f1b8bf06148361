import QSSHTools

ToolMain.run(KeygenCommand.self, name: "qssh-keygen")
