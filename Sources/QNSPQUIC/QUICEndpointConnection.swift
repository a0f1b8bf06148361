import CNGTCP2
import NIOCore

/// A connection as the endpoint drives it: the sans-I/O `QUICConnection`, its timer, its stream
/// pipes and the CIDs that route datagrams to it. Confined to the endpoint's event loop.
final class QUICEndpointConnection: @unchecked Sendable {
    let conn: QUICConnection
    unowned let endpoint: QUICEndpointHandler
    let remote: SocketAddress
    var pipes: [Int64: QUICStreamPipe] = [:]
    var cids: Set<[UInt8]> = []
    var timer: Scheduled<Void>?
    var timerDeadline: UInt64 = .max
    var handshakePromise: EventLoopPromise<QUICClient>?
    var service: QUICServiceRegistry.StreamInitializer?
    private var flushScheduled = false
    /// Fed datagrams in this read burst, to be processed at its end (`QUICEndpointHandler`).
    var pendingProcess = false
    /// Acknowledgement coalescing (docs/protocol.md §8.8): stream bytes delivered to pipes since
    /// the last flush, and until when (ngtcp2 clock) a flush that would carry only an ACK waits
    /// for the stream's reply instead (0: not waiting).
    var deliveredSinceFlush = 0
    var replyDeadline: UInt64 = 0
    /// A FIN arrived or a stream closed since the last flush: no waiting for a reply.
    var acknowledgeNow = false
    /// Stop reading a stream's user end above this many unacknowledged bytes; resume below half.
    let highWater: UInt64 = 2 << 20

    init(conn: QUICConnection, endpoint: QUICEndpointHandler, remote: SocketAddress) {
        self.conn = conn
        self.endpoint = endpoint
        self.remote = remote
    }

    var loop: EventLoop { endpoint.loop }

    // MARK: From stream pipes

    func write(stream id: Int64, _ bytes: ByteBuffer, pipe: QUICStreamPipe) {
        conn.write(stream: id, bytes)
        if conn.buffered(stream: id) > highWater { pipe.setPaused(true) }
    }

    func finish(stream id: Int64) {
        conn.finish(stream: id)
        flushSoon()
    }

    func consumed(stream id: Int64, count: Int) {
        conn.consumed(stream: id, count: count)
        flushSoon()
    }

    func pipeFailed(_ pipe: QUICStreamPipe) {
        conn.reset(stream: pipe.streamID, code: 1)
        pipes[pipe.streamID] = nil
        flushSoon()
    }

    /// Coalesces the flushes of one event-loop tick.
    func flushSoon() {
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.execute {
            self.flushScheduled = false
            self.endpoint.process(self)
        }
    }

    // MARK: Streams opened here

    func openStream(initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        do {
            let id = try conn.openStream()
            let pipe = QUICStreamPipe(streamID: id, owner: self)
            pipes[id] = pipe
            return pipe.start(loop: loop, userInitializer: initializer)
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
            if let cap = endpoint.services.streamLimits[alpn], pipes.count >= cap {
                conn.reset(stream: id, code: 0x102)  // over the ALPN's per-connection stream limit
                flushSoon()
                return
            }
            let pipe = QUICStreamPipe(streamID: id, owner: self)
            pipes[id] = pipe
            let info = QUICStreamInfo(alpn: alpn, streamID: id, remoteAddress: remote)
            pipe.start(loop: loop) { ch in service(ch, info) }.whenFailure { _ in self.pipeFailed(pipe) }
        case .streamData(let id, let bytes, let fin):
            // A FIN is acknowledged at once: the peer's stream closes only when it is, so a
            // session's end would wait for the reply window.
            if fin { acknowledgeNow = true }
            deliveredSinceFlush = min(deliveredSinceFlush + bytes.readableBytes, 1 << 40)
            if let pipe = pipes[id] {
                pipe.deliver(bytes, fin: fin)
            } else {
                conn.consumed(stream: id, count: bytes.readableBytes)
            }
        case .streamClosed(let id, _):
            acknowledgeNow = true  // no reply will come on it
            pipes.removeValue(forKey: id)?.close()
        case .closed(let error):
            handshakePromise?.fail(error ?? QUICError.connectionClosed)
            handshakePromise = nil
            for pipe in pipes.values { pipe.close() }
            pipes.removeAll()
            closeWaiters.forEach { $0.succeed(()) }
            closeWaiters.removeAll()
            closeError = error
        }
    }

    var closeWaiters: [EventLoopPromise<Void>] = []
    var closeError: QUICError?

    /// Re-enables reading from pipes whose stream drained below half the high-water mark.
    func resumePipes() {
        for (id, pipe) in pipes where pipe.paused && conn.buffered(stream: id) < highWater / 2 {
            pipe.setPaused(false)
        }
    }
}
