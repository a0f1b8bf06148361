import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QPQProtocol
import QPQServer

/// Serves qpq/1 on the plaintext side of one QNSP connection. Protocol decisions are made by
/// ``QPQServerSession`` (sans-I/O); this handler splits frames, runs one request at a time on the
/// thread pool (the store blocks), writes responses in order, and pushes queued envelopes to a
/// subscribed device. While the requests held (queued, running, partly received) use the byte
/// budget of ``QPQFlowControl``, `read()` is held back so the socket stops being read
/// (docs/messaging.md §1). All mutable state is touched on the channel's event loop only.
package final class QPQServerHandler: ChannelDuplexHandler, QPQPushSubscriber, @unchecked Sendable {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private let context: QPQServerContext
    private let registry: QPQPushRegistry
    private let pool: NIOThreadPool
    private let batcher: QPQPushBatcher
    private var splitter = QPQFrameSplitter()
    /// nil while a request runs on the pool (the session is lent to it).
    private var session: QPQServerSession?
    private var queue: [(id: UInt32, request: QPQRequest, size: Int)] = []
    private var channel: Channel?
    private var handlerContext: ChannelHandlerContext?
    private let flow: QPQFlowControl
    /// Body bytes of the queued requests and of the running one.
    private var queuedBytes = 0
    private var runningBytes = 0
    /// Large frames queued or running.
    private var largeInFlight = 0
    private var runningIsLarge = false
    /// A `read()` held back while over budget, passed on once under it.
    private var readHeld = false
    private var lastObserved: (Int, Bool) = (0, false)
    private var registeredDevice: UInt64?
    // Push state.
    private var subscribed = false
    private var pushing = false
    private var pushAgain = false
    private var lastPushed: UInt64 = 0
    private var closed = false
    // Request log (`qpqd --log-requests`).
    private let requestLog: QPQRequestLog?
    private let connectionNumber: UInt64
    private var everLoggedIn = false

    /// Most requests buffered ahead of the one running; more is a client ignoring responses.
    static let maxQueuedRequests = 64

    package init(context: QPQServerContext, registry: QPQPushRegistry, pool: NIOThreadPool, batcher: QPQPushBatcher,
                 flow: QPQFlowControl = QPQFlowControl(), requestLog: QPQRequestLog? = nil) {
        self.context = context
        self.flow = flow
        self.requestLog = requestLog
        self.connectionNumber = requestLog?.nextConnection() ?? 0
        self.registry = registry
        self.pool = pool
        self.batcher = batcher
        self.session = QPQServerSession(context: context)
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        channel = context.channel
        handlerContext = context
    }

    package func handlerRemoved(context: ChannelHandlerContext) { handlerContext = nil }

    // MARK: - Flow control

    /// Everything this connection makes the server hold: queued and running bodies, and the bytes
    /// of frames not complete yet.
    private var heldBytes: Int { queuedBytes + runningBytes + splitter.bufferedCount }

    private var overBudget: Bool {
        // Nothing to answer: a partly received frame alone is bounded by the splitter's limit, and
        // reading must go on to complete it.
        if queue.isEmpty && runningBytes == 0 { return false }
        if heldBytes >= flow.maxHeldBytes || queue.count >= Self.maxQueuedRequests { return true }
        // A second large frame waits, header read, until the one in flight has been answered.
        if largeInFlight >= flow.maxLargeInFlight, let next = splitter.pendingFrameLength, next > QPQLimits.maxFrame { return true }
        return false
    }

    package func read(context: ChannelHandlerContext) {
        if overBudget {
            readHeld = true
            observeFlow()
        } else {
            context.read()
        }
    }

    /// Passes a held `read()` on once under budget again.
    private func resumeReadingIfUnderBudget() {
        observeFlow()
        guard readHeld, !closed, !overBudget, let handlerContext else { return }
        readHeld = false
        observeFlow()
        handlerContext.read()
    }

    private func observeFlow() {
        guard let observe = flow.observe else { return }
        let now = (heldBytes, readHeld)
        guard now != lastObserved else { return }
        lastObserved = now
        observe(now.0, now.1)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        closed = true
        if let d = registeredDevice { registry.unregister(self, device: d) }
        registeredDevice = nil
        context.fireChannelInactive()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        splitter.append(buffer.readableBytesView)
        while !closed {
            let body: [UInt8]
            do {
                guard let next = try splitter.next() else { break }
                body = next
            } catch {
                // The stream cannot be resynchronised: answer and close.
                write(QPQFrame(requestId: 0, message: .response(.error(code: error.errorCode, detail: 0, message: error.description))))
                closed = true
                context.flush()
                context.close(promise: nil)
                return
            }
            let requestId = body.count >= 6 ? body[2...5].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } : 0
            do throws(QPQDecodeError) {
                let frame = try QPQCodec.decodeBody(body)
                guard case .request(let request) = frame.message else {
                    throw QPQDecodeError.malformed("type 0x\(String(frame.message.type, radix: 16)) is not a request")
                }
                guard queue.count < Self.maxQueuedRequests else {
                    write(QPQFrame(requestId: requestId, message: .response(.error(
                        code: .rateLimited, detail: 100, message: "too many requests waiting for answers"))))
                    continue
                }
                queue.append((frame.requestId, request, body.count))
                queuedBytes += body.count
                if body.count > QPQLimits.maxFrame { largeInFlight += 1 }
            } catch {
                let detail: UInt64 = error.errorCode == .unsupportedVersion ? UInt64(QPQLimits.version) : 0
                write(QPQFrame(requestId: requestId, message: .response(.error(code: error.errorCode, detail: detail, message: error.description))))
            }
        }
        context.flush()
        pump()
        observeFlow()
    }

    package func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    // MARK: - Requests

    private func write(_ frame: QPQFrame) {
        guard let channel else { return }
        let bytes: [UInt8]
        do { bytes = try QPQCodec.encode(frame) } catch {
            // Our own response over a limit (a bug): say so rather than send something the client refuses.
            let fallback = QPQFrame(requestId: frame.requestId, message: .response(.error(code: .internal, detail: 0, message: "\(error)")))
            guard let b = try? QPQCodec.encode(fallback) else { return }
            bytes = b
        }
        channel.write(channel.allocator.buffer(bytes: bytes), promise: nil)
    }

    private func pump() {
        guard !closed, let current = session, !queue.isEmpty, let channel else { return }
        let (requestId, request, size) = queue.removeFirst()
        queuedBytes -= size
        runningBytes = size
        runningIsLarge = size > QPQLimits.maxFrame
        session = nil
        let beforeRequest = flow.beforeRequest
        let loop = channel.eventLoop
        let lent = current
        let login: QPQRequestLog.Login = registeredDevice != nil ? .device : (everLoggedIn ? .ended : .never)
        pool.runIfActive(eventLoop: loop) { () -> (QPQServerSession, QPQSessionOutput) in
            beforeRequest?()
            var running = lent
            let out = running.handle(request)
            return (running, out)
        }.whenComplete { result in
            switch result {
            case .success(let (next, out)):
                self.session = next
                self.requestLog?.record(connection: self.connectionNumber, login: login, request: request, response: out.response)
                self.finish(requestId: requestId, output: out, device: next.device?.deviceId)
            case .failure:
                channel.close(promise: nil)
            }
        }
    }

    private func finish(requestId: UInt32, output: QPQSessionOutput, device: UInt64?) {
        runningBytes = 0
        if runningIsLarge { largeInFlight -= 1 }
        runningIsLarge = false
        // Frames over 2 MiB: Commit requests (welcomes with the ratchet tree), from logged-in devices only.
        splitter.largeFrames = device != nil ? .commitRequests : .refused
        write(QPQFrame(requestId: requestId, message: .response(output.response)))
        channel?.flush()
        if device != nil { everLoggedIn = true }
        if device != registeredDevice {
            if let old = registeredDevice { registry.unregister(self, device: old) }
            if let device, !closed { registry.register(self, device: device) }
            registeredDevice = device
            subscribed = false
            lastPushed = 0
        }
        if !output.notify.isEmpty { registry.notify(output.notify) }
        if let revoked = output.revoked { registry.revoke(revoked) }
        if output.subscribe != nil, registeredDevice != nil {
            subscribed = true
            lastPushed = 0
            pushPending()
        }
        pump()
        resumeReadingIfUnderBudget()
    }

    // MARK: - Push

    package func wake() {
        channel?.eventLoop.execute { self.pushPending() }
    }

    package func revoked() {
        guard let channel else { return }
        channel.eventLoop.execute {
            guard !self.closed else { return }
            self.closed = true
            self.write(QPQFrame(requestId: 0, message: .push(.revoked)))
            channel.writeAndFlush(channel.allocator.buffer(capacity: 0)).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private func pushPending() {
        guard subscribed, !closed, let device = registeredDevice, let channel else { return }
        guard !pushing else { pushAgain = true; return }
        pushing = true
        pushAgain = false
        batcher.fetch(device: device, after: lastPushed, on: channel.eventLoop) { result in
            self.pushing = false
            guard case .success(let (envelopes, more)) = result, !self.closed, self.registeredDevice == device else { return }
            for e in envelopes {
                self.write(QPQFrame(requestId: 0, message: .push(.deliver(e))))
                self.lastPushed = max(self.lastPushed, e.messageId)
            }
            if !envelopes.isEmpty { channel.flush() }
            if more || self.pushAgain { self.pushPending() }
        }
    }
}
