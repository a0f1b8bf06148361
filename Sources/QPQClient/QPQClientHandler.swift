import NIOCore
import QPQProtocol

/// The client side of qpq/1 on one QNSP connection: pairs responses with their requests by id and
/// queues pushes for ``nextPush(loop:timeout:)``. State is touched on the channel's event loop only.
final class QPQClientHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The server may send frames up to `maxLargeFrame` (welcome and commit envelopes).
    private var splitter = QPQFrameSplitter(largeFrames: .accepted)
    private var pending: [UInt32: EventLoopPromise<QPQResponse>] = [:]
    private var nextId: UInt32 = 1
    private var failure: QPQClientError?
    private var pushes: [QPQPush] = []
    private var pushWaiters: [EventLoopPromise<QPQPush?>] = []
    private var context: ChannelHandlerContext?

    init() {}

    /// On the event loop: the next push, nil once the connection has ended and none is left.
    func nextPush(loop: EventLoop, timeout: TimeAmount) -> EventLoopFuture<QPQPush?> {
        loop.preconditionInEventLoop()
        if !pushes.isEmpty { return loop.makeSucceededFuture(pushes.removeFirst()) }
        if failure != nil { return loop.makeSucceededFuture(nil) }
        let promise = loop.makePromise(of: QPQPush?.self)
        pushWaiters.append(promise)
        loop.scheduleTask(in: timeout) {
            if let i = self.pushWaiters.firstIndex(where: { $0.futureResult === promise.futureResult }) {
                self.pushWaiters.remove(at: i).fail(QPQClientError.timeout("no push from the server"))
            }
        }
        return promise.futureResult
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    /// On the event loop: sends `request` and returns the future of its response.
    func send(_ request: QPQRequest, loop: EventLoop, timeout: TimeAmount) -> EventLoopFuture<QPQResponse> {
        loop.preconditionInEventLoop()
        let promise = loop.makePromise(of: QPQResponse.self)
        if let failure {
            promise.fail(failure)
            return promise.futureResult
        }
        guard let context else {
            promise.fail(QPQClientError.connection("not connected"))
            return promise.futureResult
        }
        let id = nextId
        nextId = nextId == UInt32.max ? 1 : nextId + 1
        let bytes: [UInt8]
        do { bytes = try QPQCodec.encode(QPQFrame(requestId: id, message: .request(request))) } catch {
            promise.fail(QPQClientError.unexpectedResponse("cannot encode the request: \(error)"))
            return promise.futureResult
        }
        pending[id] = promise
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
        loop.scheduleTask(in: timeout) {
            if let p = self.pending.removeValue(forKey: id) { p.fail(QPQClientError.timeout("no answer to request type 0x\(String(request.type, radix: 16))")) }
        }
        return promise.futureResult
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        splitter.append(buffer.readableBytesView)
        do {
            while let body = try splitter.next() {
                let frame = try QPQCodec.decodeBody(body)
                switch frame.message {
                case .response(let r):
                    pending.removeValue(forKey: frame.requestId)?.succeed(r)
                case .push(let p):
                    if pushWaiters.isEmpty { pushes.append(p) } else { pushWaiters.removeFirst().succeed(p) }
                case .request:
                    throw QPQDecodeError.malformed("the server sent a request")
                }
            }
        } catch {
            fail(.connection("bad frame from the server: \(error)"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(.connection("the server closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(.connection("\(error)"))
        context.close(promise: nil)
    }

    private func fail(_ error: QPQClientError) {
        if failure == nil { failure = error }
        let waiting = pending
        pending = [:]
        for p in waiting.values { p.fail(error) }
        let waiters = pushWaiters
        pushWaiters = []
        for w in waiters { w.succeed(nil) }
    }
}
