import QSSHTools

ToolMain.run(AgentCommand.self, name: "qssh-agent")
