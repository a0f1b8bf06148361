import QSSHTools

// `qssh tunnel ...` is the stdio mode for OpenSSH's ProxyCommand; anything else is a session.
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "tunnel" {
    ToolMain.run(QSSHTunnelCommand.self, name: "qssh tunnel", failureStatus: 255, arguments: Array(arguments.dropFirst()))
}
ToolMain.run(QSSHCommand.self, name: "qssh", failureStatus: 255)
