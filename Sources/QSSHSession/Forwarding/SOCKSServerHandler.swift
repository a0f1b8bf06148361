import NIOCore
import NIOSSH

/// Serves the SOCKS4/4a/5 request at the start of a `-D` connection (parsing in
/// `SOCKSRequestParser`), opens a `direct-tcpip` channel to the named target, answers the
/// client and then gets out of the way of the byte relay.
public final class SOCKSServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private var parser = SOCKSRequestParser()
    private var connecting = false
    private var pending: [UInt8] = []
    private var inputClosedEarly = false
    private let connection: Channel
    private let log: (@Sendable (String) -> Void)?

    public init(connection: Channel, log: (@Sendable (String) -> Void)?) {
        self.connection = connection
        self.log = log
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        if connecting {
            // Data sent before our answer goes to the target once the channel is open.
            guard pending.count + bytes.count <= 1 << 20 else { return fail(context, [], "client sent too much before the reply") }
            pending += bytes
            return
        }
        var action = parser.feed(bytes)
        while case .reply(let reply) = action {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: reply)), promise: nil)
            action = parser.feed([])
        }
        switch action {
        case .needMore, .reply: return
        case .fail(let reply, let reason): fail(context, reply, reason)
        case .connect(let host, let port, let leftover):
            connecting = true
            pending = leftover
            let type = SSHChannelType.directTCPIP(.init(
                targetHost: host, targetPort: port, originatorAddress: ForwardingRelay.originator(context.channel.remoteAddress)))
            let reply = parser
            ForwardingRelay.openChannel(on: connection, type: type, joining: context.channel).assumeIsolated().whenComplete { result in
                switch result {
                case .success:
                    context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(bytes: reply.successReply())), promise: nil)
                    if !self.pending.isEmpty {
                        context.fireChannelRead(self.wrapInboundOut(context.channel.allocator.buffer(bytes: self.pending)))
                        context.fireChannelReadComplete()
                        self.pending = []
                    }
                    if self.inputClosedEarly { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
                    context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                case .failure(let error):
                    self.fail(context, reply.failureReply(.hostUnreachable), "SOCKS connect to \(host) port \(port): \(ForwardingRelay.describe(error))")
                }
            }
        }
    }

    /// A half-close while the target is being reached is passed on once the relay exists.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent {
            if connecting { inputClosedEarly = true } else { context.close(promise: nil) }  // before any request: nothing to do
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func fail(_ context: ChannelHandlerContext, _ reply: [UInt8], _ reason: String) {
        log?(reason)
        let done = context.channel.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: reply)), promise: done)
        let channel = context.channel
        done.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }
}

@available(*, unavailable)
extension SOCKSServerHandler: Sendable {}
