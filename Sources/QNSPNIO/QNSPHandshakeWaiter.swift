import NIOCore
import QNSP

/// Completes a promise when the QNSP handshake on its channel finishes, or fails it
/// with the error that ended the connection first. Passes everything through.
public final class QNSPHandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    private let promise: EventLoopPromise<QNSPSessionInfo>
    private var done = false

    public init(promise: EventLoopPromise<QNSPSessionInfo>) { self.promise = promise }

    public var future: EventLoopFuture<QNSPSessionInfo> { promise.futureResult }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .established(let info)? = event as? QNSPUserEvent, !done {
            done = true
            promise.succeed(info)
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !done { done = true; promise.fail(error) }
        context.fireErrorCaught(error)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if !done { done = true; promise.fail(QNSPError.truncatedInput("the handshake: the peer closed the connection")) }
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        if !done { done = true; promise.fail(QNSPError.connectionClosed) }
    }
}

@available(*, unavailable)
extension QNSPHandshakeWaiter: Sendable {}
