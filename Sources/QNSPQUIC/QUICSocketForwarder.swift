import NIOCore

/// The handler of a UDP socket that `QUICEndpointHandler.rebind` moved the endpoint to: it hands
/// every datagram to the endpoint's handler, which sends from whichever socket is current.
final class QUICSocketForwarder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let target: QUICEndpointHandler

    init(target: QUICEndpointHandler) { self.target = target }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { target.channelRead(context: context, data: data) }
    func channelReadComplete(context: ChannelHandlerContext) { target.channelReadComplete(context: context) }
    func channelInactive(context: ChannelHandlerContext) { target.channelInactive(context: context) }
    func errorCaught(context: ChannelHandlerContext, error: Error) {}
}
