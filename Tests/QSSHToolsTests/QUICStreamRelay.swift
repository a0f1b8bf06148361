import NIOCore
import NIOPosix
import QNSPNIO
import QNSPQUIC

/// A test client for a QUIC stream service: each TCP connection accepted on 127.0.0.1 gets its
/// own QUIC connection (offering `alpn`) and one bidirectional stream, and the two are joined
/// byte for byte (so that stock OpenSSH `ssh -p PORT 127.0.0.1` can speak through it).
final class QUICStreamRelay: Sendable {
    let listener: Channel
    var port: Int { listener.localAddress?.port ?? 0 }

    private init(listener: Channel) { self.listener = listener }

    static func start(group: EventLoopGroup, quicPort: Int, alpn: String) async throws -> QUICStreamRelay {
        let remote = try SocketAddress(ipAddress: "127.0.0.1", port: quicPort)
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { tcp in
                // The endpoint lives on the TCP channel's loop: the glue joins channels of one loop.
                QUICEndpoint.bind(group: tcp.eventLoop, host: "127.0.0.1", port: 0).flatMap { endpoint in
                    endpoint.connect(to: remote, alpn: alpn).flatMap { client in
                        client.openStream { stream in
                            stream.eventLoop.makeCompletedFuture {
                                let (a, b) = GlueHandler.matchedPair()
                                try stream.pipeline.syncOperations.addHandler(a)
                                try tcp.pipeline.syncOperations.addHandler(b)
                            }
                        }.map { stream in
                            stream.closeFuture.whenComplete { _ in
                                client.close().whenComplete { _ in endpoint.close().whenComplete { _ in } }
                            }
                            tcp.setOption(.autoRead, value: true).whenFailure { _ in tcp.close(promise: nil) }
                        }
                    }.flatMapErrorThrowing { error in
                        endpoint.close().whenComplete { _ in }
                        throw error
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return QUICStreamRelay(listener: listener)
    }

    func close() { listener.close(promise: nil) }
}
