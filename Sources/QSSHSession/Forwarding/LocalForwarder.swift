import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSH

/// The client's listening side of `-L` (each accepted connection becomes a `direct-tcpip`
/// channel to the fixed target) and `-D` (each accepted connection speaks SOCKS first and
/// names its own target). Listeners close with the SSH connection.
public final class LocalForwarder: Sendable {
    public let spec: ForwardSpec
    public let listener: Channel

    private init(spec: ForwardSpec, listener: Channel) {
        self.spec = spec
        self.listener = listener
    }

    /// The port actually bound (useful for port 0).
    public var boundPort: Int { listener.localAddress?.port ?? spec.bindPort }

    /// Starts listening for `spec` (a `-L` spec when it has a target, `-D` otherwise).
    /// - Parameter log: told about connections that could not be forwarded.
    public static func start(spec: ForwardSpec, connection: Channel, log: (@Sendable (String) -> Void)? = nil) -> EventLoopFuture<LocalForwarder> {
        let bootstrap = ServerBootstrap(group: connection.eventLoop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { tcp in
                ForwardingRelay.enableKeepalive(tcp)
                guard let host = spec.targetHost else {
                    return tcp.eventLoop.makeCompletedFuture {
                        try tcp.pipeline.syncOperations.addHandler(SOCKSServerHandler(connection: connection, log: log))
                    }
                }
                let type = SSHChannelType.directTCPIP(.init(
                    targetHost: host, targetPort: spec.targetPort, originatorAddress: ForwardingRelay.originator(tcp.remoteAddress)))
                return ForwardingRelay.openChannel(on: connection, type: type, joining: tcp)
                    .map { _ in }
                    .flatMapErrorThrowing { error in
                        log?("forwarding to \(host) port \(spec.targetPort): \(ForwardingRelay.describe(error))")
                        throw error
                    }
            }
        return bootstrap.bind(host: spec.listenAddress(), port: spec.bindPort).map { listener in
            connection.closeFuture.whenComplete { _ in listener.close(promise: nil) }
            return LocalForwarder(spec: spec, listener: listener)
        }
    }
}
