import Dispatch
import NIOCore
import NIOPosix

/// A client for a QUIC stream service: resolves the host, binds a fresh UDP socket, connects
/// offering an ALPN and opens one bidirectional stream. The stream's channel carries bytes as
/// they are (QNSP, or plain SSH-2 for ALPN `ssh`); closing it closes the QUIC connection and
/// its socket.
public enum QUICStreamClient {
    /// - Parameters:
    ///   - endpoint: an endpoint bound beforehand (see ``bind(group:host:quic:)``) to use instead
    ///     of binding one; it is closed with the connection, or if the connection fails.
    ///   - initializer: adds handlers to the stream's channel before it is active.
    public static func connect(
        group: EventLoopGroup,
        host: String,
        port: Int,
        alpn: String,
        quic: QUICEndpoint.Configuration = QUICEndpoint.Configuration(),
        endpoint prebound: EventLoopFuture<QUICEndpoint>? = nil,
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }
    ) -> EventLoopFuture<Channel> {
        let loop = prebound?.eventLoop ?? group.next()
        let resolved = loop.makePromise(of: SocketAddress.self)
        if let numeric = try? SocketAddress(ipAddress: host, port: port) {
            resolved.succeed(numeric)  // an address needs no resolver thread
        } else {
            DispatchQueue.global().async {
                resolved.completeWith(Result { try SocketAddress.makeAddressResolvingHost(host, port: port) })
            }
        }
        return resolved.futureResult.flatMap { remote in
            let any = remote.protocol == .inet6 ? "::" : "0.0.0.0"
            let bound = prebound ?? QUICEndpoint.bind(group: loop, host: any, port: 0, configuration: quic)
            return bound.flatMap { endpoint in
                quic.onEndpoint?(endpoint)
                return endpoint.connect(to: remote, alpn: alpn).flatMap { client in
                    client.openStream(initializer: initializer).map { channel in
                        channel.closeFuture.whenComplete { _ in
                            client.close().whenComplete { _ in endpoint.close().whenComplete { _ in } }
                        }
                        return channel
                    }
                }.flatMapErrorThrowing { error in
                    endpoint.close().whenComplete { _ in }
                    throw error
                }
            }
        }
    }

    /// Binds the UDP endpoint that ``connect(group:host:port:alpn:quic:endpoint:initializer:)``
    /// would bind for a numeric `host` (of its address family), so that a caller can do it while
    /// it prepares other things; nothing is sent. Nil for a host name (its family is not known
    /// before it is resolved).
    public static func bind(
        group: EventLoopGroup, host: String, quic: QUICEndpoint.Configuration = QUICEndpoint.Configuration()
    ) -> EventLoopFuture<QUICEndpoint>? {
        guard let address = try? SocketAddress(ipAddress: host, port: 0) else { return nil }
        let any = address.protocol == .inet6 ? "::" : "0.0.0.0"
        return QUICEndpoint.bind(group: group.next(), host: any, port: 0, configuration: quic)
    }
}
