import NIOCore
import QNSPNIO

/// Writes every byte it reads back to the peer; answers a half-close with one.
public final class EchoHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public init() {}

    private var lastWrite: EventLoopFuture<Void>?

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(data, promise: written)
        lastWrite = written.futureResult
    }

    public func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent {
            context.flush()
            // After the writes: with the input already closed, NIO makes a TCP output close a full
            // close, which would drop echoes still queued.
            context.close(mode: .output, after: lastWrite)
        }
        context.fireUserInboundEventTriggered(event)
    }
}

@available(*, unavailable)
extension EchoHandler: Sendable {}
