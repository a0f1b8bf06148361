import NIOCore
import NIOPosix
import QNSP
import QNSPCrypto

/// Runs a `QNSPConnection` in a NIO pipeline: ciphertext cells below, the inner
/// plaintext byte stream above.
///
/// - Writes made before the handshake completes are held and sent once it does.
/// - Reads are requested by this handler only while handshaking; afterwards the
///   next handler's `read()` calls pass through, so a slow reader stops socket
///   reads instead of making memory grow (use `autoRead = false` to get that).
/// - Events for the next handler arrive as `QNSPUserEvent` user inbound events.
public final class QNSPHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let connection: QNSPConnection
    private let isClient: Bool
    private var heldWrites: MarkedCircularBuffer<(ByteBuffer, EventLoopPromise<Void>?)> = MarkedCircularBuffer(initialCapacity: 4)
    /// Keepalive, idle, rekey, handshake and drain deadlines (decided there, carried out here).
    private var timing: StateMachine<EventLoopClock>
    /// The one timer, set for `timing.nextDeadline` (or earlier; a late deadline is re-armed on firing).
    private var timer: Scheduled<Void>?
    private var timerDeadline: EventLoopClock.Instant?
    /// The code and reason sent with an orderly close started by this handler (e.g. idle timeout).
    private var closeCode = QNSPCloseCode.normal
    private var closeReason = ""

    /// Dead-peer detection: after `interval` with nothing received, a ping is sent; after
    /// `maxMissed` such intervals in a row the connection fails with `peerUnresponsive`.
    public struct Keepalive: Sendable {
        public var interval: TimeAmount
        public var maxMissed: Int
        public init(interval: TimeAmount, maxMissed: Int = 3) { self.interval = interval; self.maxMissed = max(1, maxMissed) }
    }
    /// How a server runs its authorization policy (see ``Authorization``).
    public struct Authorization: Sendable {
        enum Mode: Sendable {
            case inline
            case pool(NIOThreadPool, timeout: TimeAmount)
        }
        let mode: Mode
        /// Refusals are answered no sooner than this says (nil: at once).
        public var refusalDelay: RefusalDelay?

        /// On the event loop, at once: only for policies that never block (tests, in-memory lists).
        public static let inline = Authorization(mode: .inline, refusalDelay: nil)

        /// On `pool`, so that a slow password database or keys file cannot stall the event loop;
        /// a policy that has not answered within `timeout` counts as a refusal.
        public static func threadPool(_ pool: NIOThreadPool, timeout: TimeAmount, refusalDelay: RefusalDelay? = RefusalDelay()) -> Authorization {
            Authorization(mode: .pool(pool, timeout: timeout), refusalDelay: refusalDelay)
        }
    }
    private let authorization: Authorization
    private var removed = false
    private var closeReceived = false
    private var failed = false
    /// Set while an orderly close waits for queued cells to reach the socket.
    private var draining: EventLoopFuture<Void>?

    /// - Parameter rekeyInterval: update the sending key this often (in addition to the byte limit).
    /// - Parameter keepalive: dead-peer detection once the session is established (nil: off).
    /// - Parameter idleTimeout: close the connection (orderly) after this long without data either way.
    /// - Parameter handshakeTimeout: fail the connection if the handshake has not finished this long
    ///   after the transport became active (a server's login grace time; nil: no limit).
    /// - Parameter authorization: how a server runs its policy (``Authorization/inline`` by default).
    public init(
        connection: QNSPConnection, isClient: Bool, rekeyInterval: TimeAmount? = .hours(1), keepalive: Keepalive? = nil,
        handshakeTimeout: TimeAmount? = nil, idleTimeout: TimeAmount? = nil, authorization: Authorization = .inline
    ) {
        self.authorization = authorization
        self.connection = connection
        self.isClient = isClient
        var configuration = StateMachine<EventLoopClock>.Configuration()
        configuration.handshakeTimeout = handshakeTimeout.map(Self.duration)
        configuration.keepaliveInterval = keepalive.map { Self.duration($0.interval) }
        configuration.keepaliveMaxMissed = keepalive?.maxMissed ?? 3
        configuration.idleTimeout = idleTimeout.map(Self.duration)
        configuration.rekeyInterval = rekeyInterval.map(Self.duration)
        configuration.drainTimeout = Self.duration(Self.closeDrainTimeout)
        timing = StateMachine(configuration: configuration, clock: EventLoopClock())
    }

    static func duration(_ t: TimeAmount) -> Duration { .nanoseconds(t.nanoseconds) }

    public var sessionInfo: QNSPSessionInfo? { connection.sessionInfo }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        timing.clock.attach(context.eventLoop)
        if context.channel.isActive { start(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        timing.transportActive()
        armTimer(context: context)
        if isClient {
            do { try connection.start() } catch { fail(context: context, error: error); return }
            flushOutbound(context: context)
        }
        context.read()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        cancelTimers()
        while let (_, promise) = heldWrites.popFirst() { promise?.fail(QNSPError.connectionClosed) }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        if !failed && !closeReceived && !connection.isClosed {
            do { try connection.receiveEOF() } catch { context.fireErrorCaught(error) }
        }
        while let (_, promise) = heldWrites.popFirst() { promise?.fail(QNSPError.connectionClosed) }
        context.fireChannelInactive()
    }

    /// Stops the timer (the transport is ending).
    private func cancelTimers() {
        timing.closed()
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }

    // MARK: Timing

    /// Sets the timer for the machine's next deadline, unless one at or before it is already set
    /// (a deadline that moved later, as every read moves the keepalive's, is found on firing).
    private func armTimer(context: ChannelHandlerContext) {
        guard let deadline = timing.nextDeadline else { return }
        if let set = timerDeadline, set <= deadline, timer != nil { return }
        timer?.cancel()
        timerDeadline = deadline
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline.deadline) {
            let (handler, context) = bound.value
            handler.timer = nil
            handler.timerDeadline = nil
            handler.execute(handler.timing.tick(), context: context)
            handler.armTimer(context: context)
        }
    }

    /// Carries out what the timing machine decided.
    private func execute(_ actions: [StateMachine<EventLoopClock>.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .sendPing:
                do {
                    try connection.ping([])
                    flushOutbound(context: context)
                } catch {
                    fail(context: context, error: error)
                }
            case .updateKey:
                do {
                    try connection.updateSendingKey()
                    flushOutbound(context: context)
                } catch {
                    fail(context: context, error: error)
                }
            case .fail(let error):
                fail(context: context, error: error)
            case .closeOrderly(let code, let reason):
                closeCode = code
                closeReason = reason
                context.channel.close(promise: nil)
            case .closeTransport:
                context.close(mode: .all, promise: nil)
            }
        }
    }

    /// How long an orderly close waits for queued cells to reach the socket before closing anyway.
    public static let closeDrainTimeout: TimeAmount = .seconds(10)

    // MARK: Inbound

    /// A transport-level half-close (TCP FIN with `allowRemoteHalfClosure`) is the end of the
    /// connection, not QNSP's end-of-stream: it is checked like an EOF and never passed up,
    /// so the next handler cannot mistake a truncated session for a clean half-close.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .inputClosed? = event as? ChannelEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        cancelTimers()
        if !failed && !closeReceived && !connection.isClosed {
            do { try connection.receiveEOF() } catch { fail(context: context, error: error); return }
        }
        context.close(promise: nil)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let input = unwrapInboundIn(data)
        var plaintext = context.channel.allocator.buffer(capacity: input.readableBytes)
        let events: [QNSPEvent]
        do {
            events = try input.withUnsafeReadableBytes { raw in
                try connection.receive(raw) { plaintext.writeBytes($0) }
            }
        } catch {
            fail(context: context, error: error)
            return
        }
        process(events, plaintext: plaintext, context: context)
    }

    /// Sends what the connection queued, then passes its events and plaintext up in order.
    private func process(_ events: [QNSPEvent], plaintext: ByteBuffer, context: ChannelHandlerContext) {
        flushOutbound(context: context)
        // The handshake's end comes first: data in the same read was sent after it, and a reply
        // the next handler writes while reading it must queue behind the writes held until now.
        for event in events { if case .established = event { handle(event, context: context) } }
        timing.received(data: plaintext.readableBytes > 0)
        if plaintext.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(plaintext)) }
        for event in events {
            if case .established = event { continue }
            handle(event, context: context)
        }
        // While the policy decides, input waits in the connection: read no more until then.
        if !connection.isEstablished && !connection.isClosed && !connection.isAwaitingAuthorization { context.read() }
    }

    // MARK: Authorization

    /// Runs the server's policy as `authorization` says and answers the connection with its
    /// decision (a refusal no sooner than the refusal delay allows).
    private func authorize(username: String, key: UserPublicKey, context: ChannelHandlerContext) {
        guard let policy = connection.authorizationPolicy else {
            fail(context: context, error: QNSPError.unexpectedMessage("authorization requested from a client connection"))
            return
        }
        let start = NIODeadline.now()
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let delay = authorization.refusalDelay
        @Sendable func answer(_ decision: QNSPConnection.AuthorizationDecision) {
            let (handler, context) = bound.value
            if case .reject = decision, let delay {
                let elapsed = NIODeadline.now() - start
                let target = delay.answerTime(user: username, elapsed: .nanoseconds(elapsed.nanoseconds))
                let at = start + .nanoseconds(Int64(target.components.seconds) * 1_000_000_000 + target.components.attoseconds / 1_000_000_000)
                loop.scheduleTask(deadline: at) { bound.value.0.finishAuthorization(decision, context: bound.value.1) }
                return
            }
            handler.finishAuthorization(decision, context: context)
        }
        switch authorization.mode {
        case .inline:
            answer(policy(username, key))
        case .pool(let pool, let timeout):
            let answered = NIOLoopBoundBox(false, eventLoop: loop)
            let timer = loop.scheduleTask(in: timeout) {
                guard !answered.value else { return }
                answered.value = true
                answer(.reject("the authorization policy did not answer within \(timeout.nanoseconds / 1_000_000_000) s"))
            }
            pool.runIfActive(eventLoop: loop) { policy(username, key) }.whenComplete { result in
                guard !answered.value else { return }
                answered.value = true
                timer.cancel()
                switch result {
                case .success(let decision): answer(decision)
                case .failure(let error): answer(.reject("the authorization policy failed: \(error)"))
                }
            }
        }
    }

    private func finishAuthorization(_ decision: QNSPConnection.AuthorizationDecision, context: ChannelHandlerContext) {
        guard !removed, !failed, connection.isAwaitingAuthorization else { return }
        var plaintext = context.channel.allocator.buffer(capacity: 0)
        let events: [QNSPEvent]
        do {
            events = try connection.completeAuthorization(decision) { plaintext.writeBytes($0) }
        } catch {
            fail(context: context, error: error)
            return
        }
        process(events, plaintext: plaintext, context: context)
    }

    private func handle(_ event: QNSPEvent, context: ChannelHandlerContext) {
        switch event {
        case .established(let info):
            timing.established()
            armTimer(context: context)
            context.fireUserInboundEventTriggered(QNSPUserEvent.established(info))
            releaseHeldWrites(context: context)
        case .closed(let code, let reason):
            closeReceived = true
            context.fireUserInboundEventTriggered(QNSPUserEvent.peerClosed(code: code, reason: reason))
            context.close(promise: nil)
        case .pong(let payload):
            context.fireUserInboundEventTriggered(QNSPUserEvent.pong(payload))
        case .peerKeyUpdated(let epoch):
            context.fireUserInboundEventTriggered(QNSPUserEvent.peerKeyUpdated(epoch: epoch))
        case .endOfStream:
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            closeIfBothEnded(context: context)
        case .authorizationRequired(let username, let key):
            authorize(username: username, key: key, context: context)
        case .retried(let offset):
            context.fireUserInboundEventTriggered(QNSPUserEvent.retried(clockOffset: offset))
        }
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        timing.sent(data: buffer.readableBytes > 0)
        // Held writes keep their place: nothing overtakes them once the session is up.
        guard connection.isEstablished, heldWrites.isEmpty else {
            if connection.isClosed { promise?.fail(QNSPError.connectionClosed) } else { heldWrites.append((buffer, promise)) }
            return
        }
        seal(buffer, context: context, promise: promise)
    }

    public func flush(context: ChannelHandlerContext) {
        if connection.isEstablished { context.flush() } else { heldWrites.mark() }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .output {
            // Half-close is a protocol message: the transport stays open for the peer's data.
            guard connection.isEstablished else {
                promise?.fail(ChannelError.operationUnsupported)
                return
            }
            releaseHeldWrites(context: context)
            do { try connection.sendEndOfStream() } catch { promise?.fail(error); return }
            flushOutbound(context: context, promise: promise)
            closeIfBothEnded(context: context)
            return
        }
        if mode == .all, let draining {
            // A second close while the first still drains (e.g. both end-of-streams, then the
            // next handler's own close) must not cut the drain short: it completes with it.
            draining.whenComplete { _ in promise?.succeed(()) }
            return
        }
        if mode == .all, connection.isEstablished {
            // Orderly close: cells still queued in the channel (data, end-of-stream, then the close
            // cell) must reach the socket first; NIO's close would discard them.
            connection.close(code: closeCode, reason: closeReason)
            let drained = context.eventLoop.makePromise(of: Void.self)
            let closed = context.eventLoop.makePromise(of: Void.self)
            draining = closed.futureResult
            timing.closeRequested()  // its drain deadline closes the transport if the cells never get out
            armTimer(context: context)
            flushOutbound(context: context, promise: drained)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            drained.futureResult.whenComplete { _ in
                let (handler, context) = bound.value
                if handler.timing.drained().contains(.closeTransport), context.channel.isActive {
                    context.close(mode: mode, promise: closed)
                } else {
                    closed.succeed(())
                }
            }
            closed.futureResult.whenComplete { result in promise?.completeWith(result) }
            return
        }
        context.close(mode: mode, promise: promise)
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let command = event as? QNSPCommand else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        do {
            switch command {
            case .ping(let payload): try connection.ping(payload)
            case .updateKey(let requestPeer): try connection.updateSendingKey(requestPeer: requestPeer)
            case .coverTraffic(let cells): try connection.sendPadding(cells: cells)
            }
            flushOutbound(context: context, promise: promise)
        } catch {
            promise?.fail(error)
        }
    }

    private func seal(_ buffer: ByteBuffer, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        var out = context.channel.allocator.buffer(capacity: connection.maxSealedSize(forDataCount: buffer.readableBytes))
        do {
            try out.writeWithUnsafeMutableBytes(minimumWritableBytes: connection.maxSealedSize(forDataCount: buffer.readableBytes)) { dest in
                try buffer.withUnsafeReadableBytes { src in try connection.sealData(src, into: dest) }
            }
        } catch {
            promise?.fail(error)
            fail(context: context, error: error)
            return
        }
        context.write(wrapOutboundOut(out), promise: promise)
    }

    private func closeIfBothEnded(context: ChannelHandlerContext) {
        if connection.sentEndOfStream && connection.receivedEndOfStream { context.channel.close(promise: nil) }
    }

    private func releaseHeldWrites(context: ChannelHandlerContext) {
        var flushNeeded = false
        while let (buffer, promise) = heldWrites.popFirst() {
            seal(buffer, context: context, promise: promise)
            flushNeeded = true
        }
        if flushNeeded { context.flush() }
    }

    private func flushOutbound(context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        let bytes = connection.takeOutbound()
        guard !bytes.isEmpty else {
            promise?.succeed(())
            return
        }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: promise)
    }

    private func fail(context: ChannelHandlerContext, error: Error) {
        guard !failed else { return }
        failed = true
        flushOutbound(context: context)  // a reject or auth result may be queued
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

}

@available(*, unavailable)
extension QNSPHandler: Sendable {}

/// Events a `QNSPHandler` sends up the pipeline.
public enum QNSPUserEvent: Sendable, Equatable {
    case established(QNSPSessionInfo)
    case peerClosed(code: UInt8, reason: String)
    case pong([UInt8])
    case peerKeyUpdated(epoch: UInt64)
    /// Client: the server answered the hello with a Retry (a cookie round under load, or a clock
    /// difference of `clockOffset` seconds) and it was sent again.
    case retried(clockOffset: Int64)
}

/// Commands the next handler can send down with `triggerUserOutboundEvent`.
public enum QNSPCommand: Sendable {
    case ping([UInt8])
    case updateKey(requestPeer: Bool)
    case coverTraffic(cells: Int)
}
