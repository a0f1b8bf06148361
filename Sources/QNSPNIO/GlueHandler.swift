import NIOCore

/// Joins two channels into one byte pipe, with backpressure: a side reads only
/// while its partner is writable. Half-closes are passed on as output closes.
public final class GlueHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var lastWrite: EventLoopFuture<Void>?
    private var recheck: Scheduled<Void>?

    private init() {}

    /// Makes two handlers that forward to each other; add one to each channel.
    public static func matchedPair() -> (GlueHandler, GlueHandler) {
        let a = GlueHandler(), b = GlueHandler()
        a.partner = b
        b.partner = a
        return (a, b)
    }

    public func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
        recheck?.cancel()
        recheck = nil
    }

    private func partnerWrite(_ data: NIOAny) {
        guard let context else { return }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(data, promise: written)
        lastWrite = written.futureResult
    }
    private func partnerFlush() { context?.flush() }
    /// The half-close waits for the writes before it: once this side's input is closed too, NIO
    /// turns an output close into a full close, which would discard writes still queued.
    private func partnerWriteEOF() { context?.close(mode: .output, after: lastWrite) }
    /// The partner is gone: close this side too, but only after what it sent us was written
    /// (or after 10 s, if this side cannot take it).
    private func partnerCloseFull() { context?.close(mode: .all, after: lastWrite, atMost: .seconds(10)) }
    private var partnerWritable: Bool { context?.channel.isWritable ?? false }
    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) { partner?.partnerWrite(data) }
    public func channelReadComplete(context: ChannelHandlerContext) { partner?.partnerFlush() }
    public func channelInactive(context: ChannelHandlerContext) { partner?.partnerCloseFull() }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, case .inputClosed = e { partner?.partnerWriteEOF() }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        partner?.partnerCloseFull()
        context.close(promise: nil)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    public func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
            scheduleRecheck(context: context)
        }
    }

    /// While reads wait for the partner, look again every 50 ms: a writability change can be
    /// missed (swift-nio-ssh does not report one that happens before a child channel is active),
    /// and a missed one would stall this side for good. Seen once under load: 14 forwarded
    /// connections never read a byte.
    private func scheduleRecheck(context: ChannelHandlerContext) {
        guard recheck == nil else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        recheck = context.eventLoop.scheduleTask(in: .milliseconds(50)) {
            let (handler, context) = bound.value
            handler.recheck = nil
            guard handler.pendingRead else { return }
            if let partner = handler.partner, partner.partnerWritable {
                handler.pendingRead = false
                context.read()
            } else if handler.context != nil {
                handler.scheduleRecheck(context: context)
            }
        }
    }
}

@available(*, unavailable)
extension GlueHandler: Sendable {}

extension ChannelHandlerContext {
    /// Closes (`mode`) once `lastWrite` has completed, so that writes still queued go out first:
    /// NIO drops them on a full close, and turns an output close into a full one once the input
    /// is closed too. With `atMost`, closes anyway after that long.
    public func close(mode: CloseMode, after lastWrite: EventLoopFuture<Void>?, atMost limit: TimeAmount? = nil) {
        guard let lastWrite else { return close(mode: mode, promise: nil) }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let timer = limit.map { limit in eventLoop.scheduleTask(in: limit) { bound.value.close(mode: mode, promise: nil) } }
        lastWrite.whenComplete { _ in
            timer?.cancel()
            bound.value.close(mode: mode, promise: nil)
        }
    }
}
