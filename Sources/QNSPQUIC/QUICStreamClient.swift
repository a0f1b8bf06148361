import Dispatch
import NIOCore
import NIOPosix

/// A client for a QUIC stream service: resolves the host, binds a fresh UDP socket, connects
/// offering an ALPN and opens one bidirectional stream. The stream's channel carries bytes as
/// they are (QNSP, or plain SSH-2 for ALPN `ssh`); closing it closes the QUIC connection and
/// its socket.
public enum QUICStreamClient {
    /// - Parameter initializer: adds handlers to the stream's channel before it is active.
    public static func connect(
        group: EventLoopGroup,
        host: String,
        port: Int,
        alpn: String,
        quic: QUICEndpoint.Configuration = QUICEndpoint.Configuration(),
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }
    ) -> EventLoopFuture<Channel> {
        let loop = group.next()
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
            return QUICEndpoint.bind(group: loop, host: any, port: 0, configuration: quic).flatMap { endpoint in
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
}
