import NIOCore
import NIOPosix
import NIOSSH
import QNSPNIO

/// The client's server for channels the server opens: `forwarded-tcpip` channels of `-R`
/// forwards, and (only with `qssh -A`) agent channels, each joined to a new connection to the
/// local agent's socket. The decision is ``ClientChannelRoute``'s.
public final class ClientInboundChannels: Sendable {
    private let remoteForwards: RemoteForwards?
    private let agentSocket: String?
    private let log: (@Sendable (String) -> Void)?

    /// - Parameters:
    ///   - remoteForwards: the `-R` forwards, if any.
    ///   - agentSocket: the local agent's socket when this client asks for agent forwarding; nil
    ///     refuses every agent channel.
    public init(remoteForwards: RemoteForwards?, agentSocket: String?, log: (@Sendable (String) -> Void)? = nil) {
        self.remoteForwards = remoteForwards
        self.agentSocket = agentSocket
        self.log = log
    }

    /// The inbound channel initializer for the client's SSH handler.
    public func initializer(child: Channel, type: SSHChannelType) -> EventLoopFuture<Void> {
        switch ClientChannelRoute.decide(type, agentForwarding: agentSocket != nil, remoteForwards: remoteForwards != nil) {
        case .refuse(let why):
            log?("refused a channel: \(why)")
            return child.eventLoop.makeFailedFuture(ForwardingRelay.ForwardingError.refusedByPolicy(why))
        case .remoteForward:
            guard let remoteForwards else { return child.eventLoop.makeFailedFuture(SSHSessionError.unsupportedChannelType) }
            return remoteForwards.initializer(child: child, type: type)
        case .agent:
            guard let agentSocket else { return child.eventLoop.makeFailedFuture(SSHSessionError.unsupportedChannelType) }
            let log = self.log
            return Self.serveAgent(child: child, socket: agentSocket).flatMapErrorThrowing { error in
                log?("forwarded agent connection: \(error)")
                throw error
            }
        }
    }

    /// Connects to the agent socket and joins it with the SSH channel; fails (the server sees
    /// the channel refused) when the agent cannot be reached.
    static func serveAgent(child: Channel, socket: String) -> EventLoopFuture<Void> {
        do {
            try child.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        } catch {
            return child.eventLoop.makeFailedFuture(error)
        }
        return ClientBootstrap(group: child.eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connectTimeout(.seconds(15))
            .connect(unixDomainSocketPath: socket)
            .flatMapErrorThrowing { error in throw ForwardingRelay.ForwardingError.connectFailed(socket, 0, "\(error)") }
            .flatMapThrowing { agent in
                do { try ForwardingRelay.join(sshChild: child, tcp: agent) } catch {
                    agent.close(promise: nil)
                    throw error
                }
            }
    }
}
