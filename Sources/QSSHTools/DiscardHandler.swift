import NIOCore

/// Swallows a session's bytes; when the peer half-closes, answers with the byte count
/// as decimal text and a newline, then closes. A sink for throughput measurements.
public final class DiscardHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private var count = 0

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        count += unwrapInboundIn(data).readableBytes
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent {
            var reply = context.channel.allocator.buffer(capacity: 24)
            reply.writeString("\(count)\n")
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in bound.value.close(mode: .output, promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }
}

@available(*, unavailable)
extension DiscardHandler: Sendable {}
