import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSP
import QNSPCrypto
import QNSPNIO
import QNSPQUIC
import QPQProtocol

/// A qpq/1 connection to qpqd inside QNSP over TCP or on one QUIC stream. The QNSP user key is fresh and random
/// (it identifies nothing; docs/messaging.md §8); the server is authenticated by its host key.
package final class QPQConnection: QPQTransport, Sendable {
    package let channel: Channel
    private let handler: QPQClientHandler
    package let timeout: TimeAmount

    /// What carries this connection: `.tcp` or `.quic` (never `.auto`).
    package let carrier: QPQCarrier
    /// The QUIC connection's UDP endpoint, closed after the stream (nil over TCP).
    private let endpoint: QUICEndpoint?

    private init(channel: Channel, handler: QPQClientHandler, timeout: TimeAmount, carrier: QPQCarrier, endpoint: QUICEndpoint?) {
        self.channel = channel
        self.handler = handler
        self.timeout = timeout
        self.carrier = carrier
        self.endpoint = endpoint
    }

    /// The next push from the server (`Deliver`, `Revoked`) in order; nil when the connection has
    /// ended; ``QPQClientError/timeout(_:)`` after `timeout`.
    package func nextPush(timeout: TimeAmount) async throws(QPQClientError) -> QPQPush? {
        let handler = self.handler
        let loop = channel.eventLoop
        do {
            return try await loop.flatSubmit { handler.nextPush(loop: loop, timeout: timeout) }.get()
        } catch let e as QPQClientError {
            throw e
        } catch {
            throw .connection("\(error)")
        }
    }

    /// Connects and completes the QNSP handshake. `hostKey` pins the server; nil accepts the key
    /// `verifyHostKey` approves (trust on first use). `carrier` picks TCP, QUIC (ALPN `qpq/1` on
    /// the UDP port with the same number) or QUIC first and TCP when the QUIC handshake has not
    /// completed within `quicDeadline` (docs/messaging.md §1.1).
    package static func connect(group: EventLoopGroup, host: String, port: Int, hostKey: HostPublicKey?,
                                verifyHostKey: @escaping @Sendable (HostPublicKey) -> Bool = { _ in false },
                                timeout: TimeAmount = .seconds(30), localAddress: SocketAddress? = nil,
                                carrier: QPQCarrier = .tcp, quicDeadline: TimeAmount = .milliseconds(1500)) async throws(QPQClientError) -> QPQConnection {
        let user: UserKeyPair
        do { user = try UserKeyPair.generate() } catch { throw .crypto("connection key: \(error)") }
        var options = QNSPBootstrap.Options()
        options.handshakeTimeout = timeout
        options.localAddress = localAddress
        let parameters = QNSPConnection.ClientParameters(username: "qpq", user: user, pinnedHostKey: hostKey, verifyHostKey: verifyHostKey)
        if carrier != .tcp {
            let deadline = carrier == .auto ? quicDeadline : min(timeout, .seconds(10))
            switch await connectQUIC(group: group, host: host, port: port, parameters: parameters, options: options,
                                     timeout: timeout, handshakeDeadline: deadline) {
            case .connected(let connection): return connection
            case .failed(let error): throw error
            case .noQUIC(let why):
                // Only a QUIC connection that never came up falls back; a QNSP failure inside an
                // established QUIC connection (a wrong host key, say) is the answer, not a reason to retry.
                guard carrier == .auto else { throw .connection("\(host):\(port) over QUIC (UDP, ALPN \(alpn)): \(why)") }
            }
        }
        let handler = QPQClientHandler()
        do {
            let (channel, handshake) = try await QNSPBootstrap.connect(group: group, host: host, port: port, parameters: parameters,
                                                                       options: options) { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) }
            }.get()
            _ = try await handshake.get()
            return QPQConnection(channel: channel, handler: handler, timeout: timeout, carrier: .tcp, endpoint: nil)
        } catch {
            throw .connection("\(host):\(port): \(error)")
        }
    }

    /// The QUIC service name qpqd registers (docs/messaging.md §1.1).
    package static let alpn = QUICServiceRegistry.qpq

    private enum QUICAttempt {
        case connected(QPQConnection)
        /// The QUIC connection did not come up (no answer, refused ALPN, handshake deadline).
        case noQUIC(String)
        /// QUIC came up but QNSP inside it failed.
        case failed(QPQClientError)
    }

    private static func connectQUIC(group: EventLoopGroup, host: String, port: Int, parameters: QNSPConnection.ClientParameters,
                                    options: QNSPBootstrap.Options, timeout: TimeAmount, handshakeDeadline: TimeAmount) async -> QUICAttempt {
        var options = options
        options.localAddress = nil
        // QUIC closes a connection after its idle timeout (60 s) without packets; QNSP pings keep a
        // quiet push connection (recv --watch, chat) alive and notice a dead server.
        options.keepalive = .init(interval: .seconds(20), maxMissed: 3)
        var quic = QUICEndpoint.Configuration()
        quic.parameters.handshakeTimeout = handshakeDeadline
        let endpointBox = NIOLockedValueBox<QUICEndpoint?>(nil)
        quic.onEndpoint = { endpoint in endpointBox.withLockedValue { $0 = endpoint } }
        let handler = QPQClientHandler()
        let connected: (Channel, EventLoopFuture<QNSPSessionInfo>)
        do {
            connected = try await QNSPQUICBootstrap.connect(group: group, host: host, port: port, alpn: alpn, parameters: parameters,
                                                            options: options, quic: quic) { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) }
            }.get()
        } catch {
            // The bootstrap closes its endpoint on failure; wait for that before the caller goes on.
            if let endpoint = endpointBox.withLockedValue({ $0 }) { try? await endpoint.channel.closeFuture.get() }
            return .noQUIC("\(error)")
        }
        let (channel, handshake) = connected
        let connection = QPQConnection(channel: channel, handler: handler, timeout: timeout, carrier: .quic,
                                       endpoint: endpointBox.withLockedValue { $0 })
        do {
            _ = try await handshake.get()
            return .connected(connection)
        } catch {
            await connection.close()
            return .failed(.connection("\(host):\(port) over QUIC: \(error)"))
        }
    }

    /// Sends `request` now and returns its answer as a future: requests started one after the other
    /// are sent (pipelined) in that order.
    package func start(_ request: QPQRequest) -> EventLoopFuture<QPQResponse> {
        let handler = self.handler
        let timeout = self.timeout
        let loop = channel.eventLoop
        return loop.flatSubmit { handler.send(request, loop: loop, timeout: timeout) }
    }

    package func call(_ request: QPQRequest) async throws(QPQClientError) -> QPQResponse {
        let handler = self.handler
        let timeout = self.timeout
        let loop = channel.eventLoop
        do {
            return try await loop.flatSubmit { handler.send(request, loop: loop, timeout: timeout) }.get()
        } catch let e as QPQClientError {
            throw e
        } catch {
            throw .connection("\(error)")
        }
    }

    /// Closes the connection; over QUIC, returns once the UDP endpoint has closed too (so that the
    /// caller may stop its event loop group right after).
    package func close() async {
        try? await channel.close()
        if let endpoint { try? await endpoint.channel.closeFuture.get() }
    }
}
