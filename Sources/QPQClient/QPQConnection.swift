import NIOCore
import NIOPosix
import QNSP
import QNSPCrypto
import QNSPNIO
import QPQProtocol

/// A qpq/1 connection to qpqd inside QNSP over TCP. The QNSP user key is fresh and random
/// (it identifies nothing; docs/messaging.md §8); the server is authenticated by its host key.
package final class QPQConnection: QPQTransport, Sendable {
    package let channel: Channel
    private let handler: QPQClientHandler
    package let timeout: TimeAmount

    private init(channel: Channel, handler: QPQClientHandler, timeout: TimeAmount) {
        self.channel = channel
        self.handler = handler
        self.timeout = timeout
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
    /// `verifyHostKey` approves (trust on first use).
    package static func connect(group: EventLoopGroup, host: String, port: Int, hostKey: HostPublicKey?,
                                verifyHostKey: @escaping @Sendable (HostPublicKey) -> Bool = { _ in false },
                                timeout: TimeAmount = .seconds(30), localAddress: SocketAddress? = nil) async throws(QPQClientError) -> QPQConnection {
        let user: UserKeyPair
        do { user = try UserKeyPair.generate() } catch { throw .crypto("connection key: \(error)") }
        let handler = QPQClientHandler()
        var options = QNSPBootstrap.Options()
        options.handshakeTimeout = timeout
        options.localAddress = localAddress
        let parameters = QNSPConnection.ClientParameters(username: "qpq", user: user, pinnedHostKey: hostKey, verifyHostKey: verifyHostKey)
        do {
            let (channel, handshake) = try await QNSPBootstrap.connect(group: group, host: host, port: port, parameters: parameters,
                                                                       options: options) { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) }
            }.get()
            _ = try await handshake.get()
            return QPQConnection(channel: channel, handler: handler, timeout: timeout)
        } catch {
            throw .connection("\(host):\(port): \(error)")
        }
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

    package func close() async {
        try? await channel.close()
    }
}
