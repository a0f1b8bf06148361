import NIOSSH

/// Where a client sends a channel the server opened (sans-I/O: the decision only). An agent
/// channel reaches the local agent only when this client asked for agent forwarding; a
/// `forwarded-tcpip` channel for a port goes to the `-R` table; everything else is refused.
public enum ClientChannelRoute: Equatable, Sendable {
    /// Connect it to the local agent.
    case agent
    /// Look its port up among the `-R` forwards this client requested.
    case remoteForward(port: Int)
    /// Refuse it (the server sees the open fail); the reason is for the client's log.
    case refuse(String)

    /// The route for a server-opened channel of `type`.
    /// - Parameters:
    ///   - agentForwarding: the client asked for agent forwarding (and has an agent).
    ///   - remoteForwards: the client has `-R` forwards that could take the channel.
    public static func decide(_ type: SSHChannelType, agentForwarding: Bool, remoteForwards: Bool) -> ClientChannelRoute {
        guard case .forwardedTCPIP(let info) = type else {
            return .refuse("the server opened a channel of a type a client does not serve")
        }
        if AgentForwarding.isReserved(host: info.listeningHost) {
            return agentForwarding ? .agent : .refuse("the server opened an agent channel, but agent forwarding was not requested")
        }
        guard remoteForwards else {
            return .refuse("the server opened a forwarded channel for port \(info.listeningPort), but no remote forwarding was requested")
        }
        return .remoteForward(port: info.listeningPort)
    }
}
