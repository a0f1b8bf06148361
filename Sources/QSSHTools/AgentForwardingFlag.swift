import ArgumentParser

/// `-A` / `-a`: forward the agent or not (the last one given wins).
enum AgentForwardingFlag: EnumerableFlag {
    case forward, noForward

    static func name(for value: AgentForwardingFlag) -> NameSpecification {
        switch value {
        case .forward: return .customShort("A")
        case .noForward: return .customShort("a")
        }
    }

    static func help(for value: AgentForwardingFlag) -> ArgumentHelp? {
        switch value {
        case .forward:
            return "Forward the agent (QSSH_AUTH_SOCK) to the session; whoever can use the forwarded socket on the server (you, root) can sign with its keys while the session lasts."
        case .noForward:
            return "Do not forward the agent (the default; overrides ForwardAgent in the config)."
        }
    }
}
