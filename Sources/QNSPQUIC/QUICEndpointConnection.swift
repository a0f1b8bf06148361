import CNGTCP2
import NIOCore

/// A connection as the endpoint drives it: the sans-I/O `QUICConnection`, its timer, the channels
/// of its streams and the CIDs that route datagrams to it. Confined to the endpoint's event loop.
final class QUICEndpointConnection: @unchecked Sendable {
    let conn: QUICConnection
    unowned let endpoint: QUICEndpointHandler
    let remote: SocketAddress
    var streams: [Int64: QUICStreamChannel] = [:]
    var cids: Set<[UInt8]> = []
    var timer: Scheduled<Void>?
    var timerDeadline: UInt64 = .max
    var handshakePromise: EventLoopPromise<QUICClient>?
    var service: QUICServiceRegistry.StreamInitializer?
    private var flushScheduled = false
    /// Fed datagrams in this read burst, to be processed at its end (`QUICEndpointHandler`).
    var pendingProcess = false
    /// Acknowledgement coalescing (docs/protocol.md §8.8): stream bytes delivered to stream
    /// channels since the last flush, and until when (ngtcp2 clock) a flush that would carry only
    /// an ACK waits for the stream's reply instead (0: not waiting).
    var deliveredSinceFlush = 0
    var replyDeadline: UInt64 = 0
    /// A FIN arrived or a stream closed since the last flush: no waiting for a reply.
    var acknowledgeNow = false
    /// A stream's channel is unwritable above this many unacknowledged bytes, writable at half.
    let highWater: UInt64 = 2 << 20

    init(conn: QUICConnection, endpoint: QUICEndpointHandler, remote: SocketAddress) {
        self.conn = conn
        self.endpoint = endpoint
        self.remote = remote
    }

    var loop: EventLoop { endpoint.loop }

    /// The endpoint is processing this connection: what its stream channels queue while their
    /// events are handled leaves with the flush that follows, so no extra pass is scheduled.
    var processing = false

    /// The endpoint dropped the connection without a word (test hook `forgetConnections`): its
    /// stream channels' last writes (a FIN as they close) must not reach the peer.
    var forgotten = false

    /// Coalesces the flushes of one event-loop tick.
    func flushSoon() {
        guard !flushScheduled, !processing, !forgotten else { return }
        flushScheduled = true
        loop.execute {
            self.flushScheduled = false
            self.endpoint.process(self)
        }
    }

    // MARK: Stream channels

    private func makeChannel(_ id: Int64) -> QUICStreamChannel {
        let channel = QUICStreamChannel(
            streamID: id,
            owner: self,
            eventLoop: loop,
            parent: endpoint.channel,
            localAddress: conn.localAddress,
            remoteAddress: remote,
            highWater: highWater
        )
        streams[id] = channel
        return channel
    }

    func openStream(initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        do {
            let id = try conn.openStream()
            return makeChannel(id).start(initializer: initializer)
        } catch {
            return loop.makeFailedFuture(error)
        }
    }

    // MARK: Events

    func handle(_ event: QUICConnection.Event) {
        switch event {
        case .handshakeCompleted(let alpn):
            if conn.isClient {
                handshakePromise?.succeed(QUICClient(connection: self, alpn: alpn))
                handshakePromise = nil
            } else {
                service = endpoint.services.services[alpn]
                if service == nil { conn.close(code: 0x101) }  // cannot happen: TLS refuses unknown ALPNs
            }
        case .streamOpened(let id):
            guard !conn.isClient, let service, let alpn = conn.alpn else {
                conn.reset(stream: id, code: 0x102)
                return
            }
            if let cap = endpoint.services.streamLimits[alpn], streams.count >= cap {
                conn.reset(stream: id, code: 0x102)  // over the ALPN's per-connection stream limit
                flushSoon()
                return
            }
            let info = QUICStreamInfo(alpn: alpn, streamID: id, remoteAddress: remote)
            _ = makeChannel(id).start { ch in service(ch, info) }
        case .streamData(let id, let bytes, let fin):
            // A FIN is acknowledged at once: the peer's stream closes only when it is, so a
            // session's end would wait for the reply window.
            if fin { acknowledgeNow = true }
            deliveredSinceFlush = min(deliveredSinceFlush + bytes.readableBytes, 1 << 40)
            deliveries.append((id, bytes, fin))  // handed over by the endpoint (`deliverPending`)
        case .streamClosed(let id, _):
            acknowledgeNow = true  // no reply will come on it
            deliverPending()  // what came before the close goes first
            streams[id]?.streamEnded()
        case .closed(let error):
            deliverPending()
            handshakePromise?.fail(error ?? QUICError.connectionClosed)
            handshakePromise = nil
            for channel in streams.values { channel.streamEnded() }
            streams.removeAll()
            closeWaiters.forEach { $0.succeed(()) }
            closeWaiters.removeAll()
            closeError = error
        }
    }

    /// Stream data of the current pass, in order, not yet handed to the stream channels.
    private var deliveries: [(id: Int64, bytes: ByteBuffer, fin: Bool)] = []

    var hasDeliveries: Bool { !deliveries.isEmpty }

    /// Hands the pass's stream data to the stream channels (bytes for a stream without one are
    /// credited and dropped: nobody reads them).
    func deliverPending() {
        guard !deliveries.isEmpty else { return }
        let batch = deliveries
        deliveries.removeAll(keepingCapacity: true)
        for d in batch {
            if let channel = streams[d.id] {
                channel.receive(d.bytes, fin: d.fin)
            } else {
                conn.consumed(stream: d.id, count: d.bytes.readableBytes)
            }
        }
    }

    var closeWaiters: [EventLoopPromise<Void>] = []
    var closeError: QUICError?

    /// After a read burst (acknowledgements may have freed send buffers): stream channels whose
    /// writability may have changed look again.
    func updateWritability() {
        for channel in streams.values { channel.bufferedChanged() }
    }
}

// MARK: - QUICStreamOwner

extension QUICEndpointConnection: QUICStreamOwner {
    func streamWrite(_ id: Int64, _ bytes: ByteBuffer) { conn.write(stream: id, bytes) }

    func streamFinish(_ id: Int64) { conn.finish(stream: id) }

    func streamConsumed(_ id: Int64, count: Int) { conn.consumed(stream: id, count: count) }

    func streamBuffered(_ id: Int64) -> UInt64 { conn.buffered(stream: id) }

    func streamChannelClosed(_ id: Int64) { streams[id] = nil }

    func streamFailed(_ id: Int64) {
        conn.reset(stream: id, code: 1)
        flushSoon()
    }
}
