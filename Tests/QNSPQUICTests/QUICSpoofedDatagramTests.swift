import NIOCore
import NIOPosix
import QNSPQUIC
import Testing

/// Garbage from the server's own address must not end a live connection: only a valid stateless
/// reset does (docs/protocol.md §8.4, §8.11).
@Suite("QUIC spoofed short-header datagrams", .serialized)
struct QUICSpoofedDatagramTests {
    @Test(
        "random short-header datagrams (21-1200 bytes, random CIDs) from the server's address do not kill a transfer",
        .timeLimit(.minutes(2))
    )
    func randomShortHeadersIgnored() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var config = QUICEndpoint.Configuration()
        config.requireRetry = false
        let server = try await QUICEndpoint.bind(
            group: group, host: "127.0.0.1", port: 0, server: try TestCerts.server(), services: StreamEcho.registry(),
            configuration: config
        ).get()
        // The client talks to the relay: to it, the relay's address is the server's.
        let relay = try await LossyRelay.start(group: group, server: try #require(server.localAddress), impairment: .init())
        let ce = try await QUICEndpoint.bind(group: group, host: "127.0.0.1", port: 0).get()
        let c = try await ce.connect(to: try #require(relay.address), alpn: "echo").get()
        let total = 4 << 20
        let done = group.next().makePromise(of: BulkResult.self)
        _ = try await c.openStream { ch in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(StreamBulk(total: total, done: done)) }
        }.get()
        let client = try #require(relay.state.lock.withLock { relay.state.client })
        var rng = SystemRandomNumberGenerator()
        for i in 0..<3000 {
            let n = [21, 22, 23, 40, 100, 1200][i % 6] + (i % 6 == 5 ? 0 : Int.random(in: 0..<8, using: &rng))
            var d = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            d[0] = d[0] & 0x3F | 0x40
            try await relay.front.writeAndFlush(AddressedEnvelope(remoteAddress: client, data: ByteBuffer(bytes: d))).get()
        }
        let r = try await done.futureResult.get()
        #expect(r.receivedBytes == total)
        #expect(r.sent == r.received)
        #expect(try await ce.connectionCount().get() == 1, "the connection ended")
        try await c.close().get()
        try await ce.close().get()
        await relay.stop()
        try await server.close().get()
        try await group.shutdownGracefully()
    }
}
