import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSP
import QNSPNIO

/// QNSP over QUIC, the counterpart of `QNSPBootstrap` for TCP: a client that connects with an
/// ALPN and runs QNSP on one bidirectional stream, and a service that runs QNSP on every stream
/// a client opens (register it in a `QUICServiceRegistry` under `qssh/1`, `qnsp/1`, ...).
public enum QNSPQUICBootstrap {
    /// Connects to `host:port` over QUIC offering `alpn`, opens a stream and starts QNSP on it as a
    /// client. The QUIC connection (and its UDP socket) closes when the returned channel closes.
    /// `endpoint`: one bound beforehand (`QUICStreamClient.bind`), used instead of binding one.
    public static func connect(
        group: EventLoopGroup,
        host: String,
        port: Int,
        alpn: String,
        parameters: QNSPConnection.ClientParameters,
        options: QNSPBootstrap.Options = QNSPBootstrap.Options(),
        quic: QUICEndpoint.Configuration = QUICEndpoint.Configuration(),
        endpoint: EventLoopFuture<QUICEndpoint>? = nil,
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }
    ) -> EventLoopFuture<(Channel, EventLoopFuture<QNSPSessionInfo>)> {
        let handshake = NIOLockedValueBox<EventLoopFuture<QNSPSessionInfo>?>(nil)
        return QUICStreamClient.connect(group: group, host: host, port: port, alpn: alpn, quic: quic, endpoint: endpoint) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.syncOptions?.setOption(.autoRead, value: options.autoRead)
                let waiter = try QNSPBootstrap.addHandlers(
                    to: channel,
                    connection: QNSPConnection(client: parameters, configuration: options.configuration),
                    isClient: true,
                    options: options
                )
                handshake.withLockedValue { $0 = waiter.future }
            }.flatMap { initializer(channel) }
        }.flatMapThrowing { channel -> (Channel, EventLoopFuture<QNSPSessionInfo>) in
            guard let future = handshake.withLockedValue({ $0 }) else { throw ChannelError.inappropriateOperationForState }
            return (channel, future)
        }
    }

    /// A stream service that runs QNSP as a server on every stream, like `QNSPBootstrap.bindServer`'s
    /// child initializer. `parameters.peerAddress` is the QUIC client's address.
    public static func service(
        parametersFor: @escaping @Sendable (Channel, QUICStreamInfo) -> QNSPConnection.ServerParameters,
        options: QNSPBootstrap.Options = QNSPBootstrap.Options(),
        childInitializer: @escaping @Sendable (Channel, EventLoopFuture<QNSPSessionInfo>) -> EventLoopFuture<Void>
    ) -> QUICServiceRegistry.StreamInitializer {
        { channel, info in
            do {
                try channel.syncOptions?.setOption(.autoRead, value: options.autoRead)
                var parameters = parametersFor(channel, info)
                parameters.peerAddress = QNSPBootstrap.addressBytes(info.remoteAddress)
                let waiter = try QNSPBootstrap.addHandlers(
                    to: channel,
                    connection: QNSPConnection(server: parameters, configuration: options.configuration),
                    isClient: false,
                    options: options
                )
                return childInitializer(channel, waiter.future)
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }
    }
}
