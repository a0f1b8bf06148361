import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QPQProtocol
import QPQServer

/// Serves qpq/1 on the plaintext side of one QNSP connection. Protocol decisions are made by
/// ``QPQServerSession`` (sans-I/O); this handler splits frames, runs one request at a time on the
/// thread pool (the store blocks), writes responses in order, and pushes queued envelopes to a
/// subscribed device. All mutable state is touched on the channel's event loop only.
package final class QPQServerHandler: ChannelInboundHandler, QPQPushSubscriber, @unchecked Sendable {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private let context: QPQServerContext
    private let registry: QPQPushRegistry
    private let pool: NIOThreadPool
    private let batcher: QPQPushBatcher
    private var splitter = QPQFrameSplitter()
    /// nil while a request runs on the pool (the session is lent to it).
    private var session: QPQServerSession?
    private var queue: [(UInt32, QPQRequest)] = []
    private var channel: Channel?
    private var registeredDevice: UInt64?
    // Push state.
    private var subscribed = false
    private var pushing = false
    private var pushAgain = false
    private var lastPushed: UInt64 = 0
    private var closed = false

    /// Most requests buffered ahead of the one running; more is a client ignoring responses.
    static let maxQueuedRequests = 64

    package init(context: QPQServerContext, registry: QPQPushRegistry, pool: NIOThreadPool, batcher: QPQPushBatcher) {
        self.context = context
        self.registry = registry
        self.pool = pool
        self.batcher = batcher
        self.session = QPQServerSession(context: context)
    }

    package func handlerAdded(context: ChannelHandlerContext) { channel = context.channel }

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
                queue.append((frame.requestId, request))
            } catch {
                let detail: UInt64 = error.errorCode == .unsupportedVersion ? UInt64(QPQLimits.version) : 0
                write(QPQFrame(requestId: requestId, message: .response(.error(code: error.errorCode, detail: detail, message: error.description))))
            }
        }
        context.flush()
        pump()
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
        let (requestId, request) = queue.removeFirst()
        session = nil
        let loop = channel.eventLoop
        let lent = current
        pool.runIfActive(eventLoop: loop) { () -> (QPQServerSession, QPQSessionOutput) in
            var running = lent
            let out = running.handle(request)
            return (running, out)
        }.whenComplete { result in
            switch result {
            case .success(let (next, out)):
                self.session = next
                self.finish(requestId: requestId, output: out, device: next.device?.deviceId)
            case .failure:
                channel.close(promise: nil)
            }
        }
    }

    private func finish(requestId: UInt32, output: QPQSessionOutput, device: UInt64?) {
        // Frames over 2 MiB: Commit requests (welcomes with the ratchet tree), from logged-in devices only.
        splitter.largeFrames = device != nil ? .commitRequests : .refused
        write(QPQFrame(requestId: requestId, message: .response(output.response)))
        channel?.flush()
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
