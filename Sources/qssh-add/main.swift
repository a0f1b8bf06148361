import QSSHTools

ToolMain.run(AddCommand.self, name: "qssh-add")
