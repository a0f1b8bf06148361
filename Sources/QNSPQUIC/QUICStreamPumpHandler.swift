import NIOCore

/// The pump end's handler: bytes the user end writes go out on the QUIC stream.
final class QUICStreamPumpHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let pipe: QUICStreamPipe
    private var finished = false

    init(pipe: QUICStreamPipe) { self.pipe = pipe }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pipe.owner?.write(stream: pipe.streamID, unwrapInboundIn(data), pipe: pipe)
    }

    func channelReadComplete(context: ChannelHandlerContext) { pipe.owner?.flushSoon() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent { finish() }
    }

    func channelInactive(context: ChannelHandlerContext) { finish() }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    private func finish() {
        guard !finished else { return }
        finished = true
        pipe.owner?.finish(stream: pipe.streamID)
    }
}
