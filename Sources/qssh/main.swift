import QSSHTools

// `qssh tunnel ...` is the stdio mode for OpenSSH's ProxyCommand; anything else is a session.
// Settings from ~/.qssh/config (or -F FILE) for the destination go before the command line's.
var arguments = Array(CommandLine.arguments.dropFirst())
let tunnel = arguments.first == "tunnel"
if tunnel { arguments.removeFirst() }
do {
    arguments = try QSSHClientConfig.expand(arguments, forTunnel: tunnel)
} catch {
    ToolMain.fail(name: "qssh", "\(error)", status: 255)
}
if tunnel {
    ToolMain.run(QSSHTunnelCommand.self, name: "qssh tunnel", failureStatus: 255, arguments: arguments)
}
ToolMain.run(QSSHCommand.self, name: "qssh", failureStatus: 255, arguments: arguments)
