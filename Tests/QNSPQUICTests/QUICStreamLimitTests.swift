import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import QNSPQUIC
import Testing

/// Collects what comes back on a stream: `next(n)` gives the next `n` bytes (or fails when the
/// stream closes first). Confined to the stream's event loop.
final class StreamCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var bytes: [UInt8] = []
    private var waiter: (Int, EventLoopPromise<[UInt8]>)?
    private var closed = false

    func next(_ n: Int, on loop: EventLoop) -> EventLoopFuture<[UInt8]> {
        loop.flatSubmit {
            let promise = loop.makePromise(of: [UInt8].self)
            self.waiter = (n, promise)
            self.check()
            return promise.futureResult
        }
    }
    private func check() {
        guard let (n, promise) = waiter else { return }
        if bytes.count >= n {
            waiter = nil
            let out = Array(bytes.prefix(n))
            bytes.removeFirst(n)
            promise.succeed(out)
        } else if closed {
            waiter = nil
            promise.fail(QUICError.connectionClosed)
        }
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        bytes += b.readBytes(length: b.readableBytes) ?? []
        check()
    }
    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        check()
    }
}

@Suite("QUIC per-ALPN stream limit", .serialized)
struct QUICStreamLimitTests {
    @Test("streams over the ALPN's per-connection cap are reset; the first still works; a closed one frees its slot",
          .timeLimit(.minutes(1)))
    func streamCap() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let seen = NIOLockedValueBox(0)
        var services = QUICServiceRegistry()
        services.register("echo", maxStreamsPerConnection: 2) { ch, _ in
            seen.withLockedValue { $0 += 1 }
            return ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(StreamEcho()) }
        }
        var config = QUICEndpoint.Configuration()
        config.requireRetry = false
        let server = try await QUICEndpoint.bind(
            group: group, host: "127.0.0.1", port: 0, server: try TestCerts.server(), services: services, configuration: config
        ).get()
        let ce = try await QUICEndpoint.bind(group: group, host: "127.0.0.1", port: 0).get()
        let c = try await ce.connect(to: try #require(server.localAddress), alpn: "echo").get()

        func open(_ text: String) async throws -> (Channel, StreamCollector, EventLoopFuture<[UInt8]>) {
            let collector = StreamCollector()
            let ch = try await c.openStream { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(collector) }
            }.get()
            let echo = collector.next(text.utf8.count, on: ch.eventLoop)
            try await ch.writeAndFlush(ByteBuffer(string: text)).get()
            return (ch, collector, echo)
        }
        let (a, aCollector, aEcho) = try await open("first")
        #expect(try await aEcho.get() == Array("first".utf8))
        let (b, _, bEcho) = try await open("second")
        #expect(try await bEcho.get() == Array("second".utf8))
        // The third: reset by the server, never given to the service.
        let (third, _, thirdEcho) = try await open("third")
        await #expect(throws: (any Error).self) { _ = try await thirdEcho.get() }
        try await third.closeFuture.get()
        #expect(seen.withLockedValue { $0 } == 2)
        // The first still works.
        let again = aCollector.next(5, on: a.eventLoop)
        try await a.writeAndFlush(ByteBuffer(string: "again")).get()
        #expect(try await again.get() == Array("again".utf8))
        // Closing one frees its slot: a later stream is served.
        try await b.close().get()
        var served = false
        for _ in 0..<50 where !served {
            let (d, _, dEcho) = try await open("fourth")
            if let bytes = try? await dEcho.get() {
                #expect(bytes == Array("fourth".utf8))
                served = true
            }
            try? await d.close().get()
        }
        #expect(served)
        try await a.close().get()
        try await c.close().get()
        try await ce.close().get()
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    @Test("only EIO, EINVAL and EOPNOTSUPP turn UDP segmentation offload off")
    func gsoFallbackErrors() {
        for code in [EIO, EINVAL, EOPNOTSUPP] {
            #expect(QUICEndpointHandler.meansNoSegmentationOffload(IOError(errnoCode: code, reason: "sendmsg")))
        }
        for code in [ENOBUFS, EAGAIN, ENETUNREACH, ECONNREFUSED] {
            #expect(!QUICEndpointHandler.meansNoSegmentationOffload(IOError(errnoCode: code, reason: "sendmsg")))
        }
        #expect(!QUICEndpointHandler.meansNoSegmentationOffload(ChannelError.ioOnClosedChannel))
    }
}
