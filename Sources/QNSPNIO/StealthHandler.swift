import NIOCore
import QNSP

/// Runs a ``StealthSession`` between the socket and ``QNSPHandler``: stealth frames below,
/// the QNSP byte stream above (docs/protocol.md §9).
///
/// A server passes nothing up and writes nothing until a valid hello arrived; for any other
/// input it reads and discards, and closes at the session's random byte limit, at its random
/// deadline, or when the peer closes, whichever comes first.
public final class StealthHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let session: StealthSession
    private var started = false
    private var failed = false
    private var deadline: Scheduled<Void>?
    /// Promises of writes a server held until it accepted the hello.
    private var heldPromises: [EventLoopPromise<Void>] = []

    public init(session: StealthSession) {
        self.session = session
    }

    /// Why the server refused the first flight (nil while it did not), for logs and tests.
    public var refusal: String? { session.refusal }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        failHeld(StealthError.closed)
    }

    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        if session.isClient {
            writeOutbound(context: context, promise: nil)  // Rc and the hello; QNSP's first write flushes it
            return
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let ms = session.probeDeadline.components.seconds * 1000 + session.probeDeadline.components.attoseconds / 1_000_000_000_000_000
        deadline = context.eventLoop.scheduleTask(in: .milliseconds(ms)) {
            let (handler, context) = bound.value
            handler.deadline = nil
            if !handler.session.isAccepted { handler.closeSilently(context: context) }
        }
        if !context.channel.isActive { return }
        context.read()
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let input = unwrapInboundIn(data)
        var plaintext = context.channel.allocator.buffer(capacity: input.readableBytes)
        let event: StealthSession.Event?
        do {
            event = try input.withUnsafeReadableBytes { raw in
                try session.receive(raw) { plaintext.writeBytes($0) }
            }
        } catch {
            fail(context: context, error: error)
            return
        }
        switch event {
        case .accepted?:
            deadline?.cancel()
            deadline = nil
            let promises = heldPromises
            heldPromises = []
            writeOutbound(context: context, promise: nil)
            context.flush()
            for p in promises { p.succeed(()) }
        case .closeProbe?:
            closeSilently(context: context)
            return
        case nil:
            break
        }
        if plaintext.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(plaintext)) }
        if !session.isAccepted { context.read() }  // keep reading (and discarding) until a limit
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if session.isAccepted { context.fireChannelReadComplete() }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .inputClosed? = event as? ChannelEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard session.isAccepted else {
            closeSilently(context: context)
            return
        }
        do { try session.receiveEOF() } catch { fail(context: context, error: error); return }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        do {
            try buffer.withUnsafeReadableBytes { raw in try session.seal(raw) }
        } catch {
            promise?.fail(error)
            return
        }
        if session.isAccepted {
            writeOutbound(context: context, promise: promise)
        } else if let promise {
            heldPromises.append(promise)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        if session.isAccepted { context.flush() }
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard case .padding(let frames)? = event as? StealthCommand else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        do { try session.sealPadding(count: frames) } catch { promise?.fail(error); return }
        writeOutbound(context: context, promise: promise)
        context.flush()
    }

    private func writeOutbound(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        let chunks = session.takeOutbound()
        guard !chunks.isEmpty else {
            promise?.succeed(())
            return
        }
        // One write for all frames of this call: a write can fire a writability change whose
        // handler writes again (re-entering here); frames written one by one could then be
        // overtaken by later frames, which the peer's implicit nonces refuse.
        var buffer = context.channel.allocator.buffer(capacity: chunks.reduce(0) { $0 + $1.count })
        for chunk in chunks { buffer.writeBytes(chunk) }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    private func failHeld(_ error: Error) {
        let promises = heldPromises
        heldPromises = []
        for p in promises { p.fail(error) }
    }

    /// A probe's end: no byte written, an orderly close.
    private func closeSilently(context: ChannelHandlerContext) {
        guard !failed else { return }
        failed = true
        deadline?.cancel()
        deadline = nil
        failHeld(StealthError.closed)
        context.close(promise: nil)
    }

    private func fail(context: ChannelHandlerContext, error: Error) {
        guard !failed else { return }
        failed = true
        failHeld(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension StealthHandler: Sendable {}

/// Commands for a ``StealthHandler`` sent with `triggerUserOutboundEvent`.
public enum StealthCommand: Sendable {
    /// Send this many padding frames of random sizes (cover traffic).
    case padding(frames: Int)
}
