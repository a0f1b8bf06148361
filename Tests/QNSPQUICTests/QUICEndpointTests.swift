import CNGTCP2
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSP
import QNSPCrypto
import QNSPNIO
import QNSPQUIC
import Testing

@Suite("QUIC carrier (ngtcp2)", .serialized)
struct QUICEndpointTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    func echoServer(
        retry: QUICEndpoint.RetryPolicy = .always,
        services: QUICServiceRegistry = StreamEcho.registry()
    ) async throws -> QUICEndpoint {
        var config = QUICEndpoint.Configuration()
        config.retry = retry
        return try await QUICEndpoint.bind(
            group: group,
            host: "127.0.0.1",
            port: 0,
            server: try TestCerts.server(),
            services: services,
            configuration: config
        ).get()
    }

    /// One client connection to `server` through a relay that changes nothing, echoing `total`
    /// bytes; returns how many Retry packets the relay saw.
    func retriesOfOneConnection(to server: QUICEndpoint, echoing total: Int) async throws -> Int {
        let relay = try await LossyRelay.start(group: group, server: try #require(server.localAddress), impairment: .init())
        let ce = try await client()
        let c = try await ce.connect(to: try #require(relay.address), alpn: "echo").get()
        let r = try await bulk(c, total: total)
        #expect(r.sent == r.received)
        let retries = relay.state.lock.withLock { relay.state.retries }
        try await ce.close().get()
        await relay.stop()
        return retries
    }

    func client() async throws -> QUICEndpoint {
        try await QUICEndpoint.bind(group: group, host: "127.0.0.1", port: 0).get()
    }

    func bulk(_ client: QUICClient, total: Int) async throws -> BulkResult {
        let done = group.next().makePromise(of: BulkResult.self)
        _ = try await client.openStream { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(StreamBulk(total: total, done: done))
            }
        }.get()
        return try await done.futureResult.get()
    }

    @Test("16 MiB each way through our own client and server, hash checked", .timeLimit(.minutes(2)))
    func ownRoundTrip() async throws {
        let server = try await echoServer()
        let ce = try await client()
        let addr = try #require(server.localAddress)
        let c = try await ce.connect(to: addr, alpn: "echo").get()
        #expect(c.alpn == "echo")
        let r = try await bulk(c, total: 16 << 20)
        #expect(r.receivedBytes == 16 << 20)
        #expect(r.sent == r.received)
        try await c.close().get()
        try await ce.close().get()
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    @Test("an unknown ALPN fails the handshake with no_application_protocol (0x178)", .timeLimit(.minutes(1)))
    func unknownALPN() async throws {
        let server = try await echoServer()
        let ce = try await client()
        let addr = try #require(server.localAddress)
        await #expect(throws: QUICError.noApplicationProtocol) {
            _ = try await ce.connect(to: addr, alpn: "bogus/9").get()
        }
        // The server still serves a good client afterwards.
        let c = try await ce.connect(to: addr, alpn: "echo").get()
        let r = try await bulk(c, total: 100_000)
        #expect(r.sent == r.received)
        try await ce.close().get()
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    @Test(
        "Retry: the server validates the address first (one Retry seen on the wire); without it, none",
        .timeLimit(.minutes(1))
    )
    func retryPath() async throws {
        for requireRetry in [true, false] {
            let server = try await echoServer(retry: requireRetry ? .always : .never)
            let retries = try await retriesOfOneConnection(to: server, echoing: 200_000)
            #expect(retries == (requireRetry ? 1 : 0), "requireRetry \(requireRetry): \(retries) Retry packets")
            try await server.close().get()
        }
        try await group.shutdownGracefully()
    }

    @Test(
        "Retry under load (the default policy): none while new connections are few, a Retry beyond the rate",
        .timeLimit(.minutes(1))
    )
    func retryUnderLoad() async throws {
        #expect(QUICEndpoint.Configuration().retry == .underLoad(newConnectionsPerSecond: 50))
        // A burst of one, then one a second.
        let server = try await echoServer(retry: .underLoad(newConnectionsPerSecond: 1))
        var retries: [Int] = []
        for _ in 0..<2 { retries.append(try await retriesOfOneConnection(to: server, echoing: 10_000)) }
        // The first connection starts its handshake at once; the next, within the same second
        // (the budget refills at one a second), had to prove its address first and then connected.
        #expect(retries == [0, 1])
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    @Test("loss, reordering and duplication (1% and 5% loss): 4 MiB each way arrives intact", .timeLimit(.minutes(3)))
    func lossyRelay() async throws {
        for drop in [0.01, 0.05] {
            let server = try await echoServer()
            let relay = try await LossyRelay.start(
                group: group,
                server: try #require(server.localAddress),
                impairment: .init(drop: drop, duplicate: 0.01, reorder: 0.02),
                seed: UInt64(drop * 1000)
            )
            let ce = try await client()
            let c = try await ce.connect(to: try #require(relay.address), alpn: "echo").get()
            let r = try await bulk(c, total: 4 << 20)
            #expect(r.receivedBytes == 4 << 20)
            #expect(r.sent == r.received)
            let dropped = relay.state.lock.withLock { relay.state.dropped }
            #expect(dropped > 0, "the relay dropped nothing at \(drop)")
            try await ce.close().get()
            await relay.stop()
            try await server.close().get()
        }
        try await group.shutdownGracefully()
    }

    @Test(
        "NAT rebinding mid-transfer: the client's packets arrive from a new port, the transfer completes intact",
        .timeLimit(.minutes(2))
    )
    func rebindingMidTransfer() async throws {
        let server = try await echoServer()
        let relay = try await LossyRelay.start(
            group: group,
            server: try #require(server.localAddress),
            impairment: .init()
        )
        let ce = try await client()
        let c = try await ce.connect(to: try #require(relay.address), alpn: "echo").get()
        let total = 8 << 20
        let done = group.next().makePromise(of: BulkResult.self)
        let progress = group.next().makePromise(of: Void.self)
        _ = try await c.openStream { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(ProgressTap(after: 1 << 20, reached: progress))
                try ch.pipeline.syncOperations.addHandler(StreamBulk(total: total, done: done))
            }
        }.get()
        try await progress.futureResult.get()  // 1 MiB came back: the transfer is under way
        let oldPort = relay.back.localAddress?.port
        try await relay.rebind(group: group)
        #expect(relay.back.localAddress?.port != oldPort)
        let r = try await done.futureResult.get()
        #expect(r.receivedBytes == total)
        #expect(r.sent == r.received)
        try await ce.close().get()
        await relay.stop()
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    @Test(
        "anti-amplification: to an address that never validates, the server sends at most 3x what it received",
        .timeLimit(.minutes(1))
    )
    func antiAmplification() async throws {
        var config = QUICEndpoint.Configuration()
        config.requireRetry = false  // the handshake itself must respect the limit
        config.parameters.handshakeTimeout = .seconds(3)
        let server = try await QUICEndpoint.bind(
            group: group,
            host: "127.0.0.1",
            port: 0,
            server: try TestCerts.server(),
            services: StreamEcho.registry(),
            configuration: config
        ).get()
        let relay = try await LossyRelay.start(
            group: group,
            server: try #require(server.localAddress),
            impairment: .init(onlyFirstFromClient: true)
        )
        var clientConfig = QUICEndpoint.Configuration()
        clientConfig.parameters.handshakeTimeout = .seconds(3)
        let ce = try await QUICEndpoint.bind(group: group, host: "127.0.0.1", port: 0, configuration: clientConfig)
            .get()
        // The client may even finish its side of the handshake (it has the server's whole first
        // flight); the server never hears its Finished, so for the server the address stays unvalidated.
        _ = try? await ce.connect(to: try #require(relay.address), alpn: "echo").get()
        // The server gave up on the connection (its handshake timeout): everything it sent is counted.
        let deadline = NIODeadline.now() + .seconds(20)
        while try await server.connectionCount().get() > 0 && NIODeadline.now() < deadline {
            try await group.next().scheduleTask(in: .milliseconds(100)) {}.futureResult.get()
        }
        #expect(try await server.connectionCount().get() == 0)
        let (clientBytes, serverBytes, datagrams) = relay.counters
        #expect(datagrams > 1, "the client did retransmit")
        #expect(clientBytes >= 1200)
        #expect(serverBytes > 0 && serverBytes <= 3 * clientBytes, "server sent \(serverBytes) for \(clientBytes)")
        try await ce.close().get()
        await relay.stop()
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    @Test(
        "10,000 fuzzed datagrams at the endpoint: no crash, bounded connection state, it still serves",
        .timeLimit(.minutes(3))
    )
    func fuzzedDatagrams() async throws {
        // Without Retry, so mutated Initials reach ngtcp2's packet parser and TLS.
        let server = try await echoServer(retry: .never)
        let addr = try #require(server.localAddress)
        // Real packets to mutate: a client's first flight recorded through a relay.
        let relay = try await LossyRelay.start(group: group, server: addr, impairment: .init())
        let ce = try await client()
        let c = try await ce.connect(to: try #require(relay.address), alpn: "echo").get()
        try await c.close().get()
        let sender = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        var rng = SystemRandomNumberGenerator()
        var seedPacket = [UInt8](repeating: 0, count: 1200)
        seedPacket[0] = 0xC0  // long header, Initial
        seedPacket[1...4] = [0, 0, 0, 1]
        seedPacket[5] = 8
        for i in 0..<10_000 {
            var d: [UInt8]
            switch i % 4 {
            case 0:  // random bytes of random length
                d = (0..<Int.random(in: 0...1500, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1:  // an Initial-looking header, random body
                d = seedPacket
                for j in 6..<d.count { d[j] = UInt8.random(in: 0...255, using: &rng) }
                d[5] = UInt8.random(in: 0...24, using: &rng)
            case 2:  // truncated
                d = Array(seedPacket.prefix(Int.random(in: 1...40, using: &rng)))
                d[0] = UInt8.random(in: 0...255, using: &rng)
            default:  // short header, random CID and body
                d = (0..<Int.random(in: 1...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                d[0] = d[0] & 0x7F | 0x40
            }
            let buf = sender.allocator.buffer(bytes: d)
            try await sender.writeAndFlush(AddressedEnvelope(remoteAddress: addr, data: buf))
            if i % 500 == 499 {
                // Let the server drain its socket so the test measures handling, not kernel drops.
                #expect(try await server.connectionCount().get() <= 500)
            }
        }
        // Still serving, and the junk left no lasting connections behind (failed handshakes time out).
        let c2 = try await ce.connect(to: addr, alpn: "echo").get()
        let r = try await bulk(c2, total: 1 << 20)
        #expect(r.sent == r.received)
        try await sender.close()
        try await ce.close().get()
        await relay.stop()
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    @Test(
        "QNSP inside a QUIC stream: a real QNSP handshake, then 8 MiB each way, hash checked",
        .timeLimit(.minutes(2))
    )
    func qnspInsideQUIC() async throws {
        let host = try HostKeyPair.generate()
        let user = try UserKeyPair.generate()
        let serverParams = QNSPConnection.ServerParameters(hostKeys: [host]) { _, key in
            key == user.publicKey ? .accept : .reject("unknown")
        }
        var services = QUICServiceRegistry()
        let peers = NIOLockedValueBox<[[UInt8]]>([])
        services.register(
            QUICServiceRegistry.qnsp,
            QNSPQUICBootstrap.service(parametersFor: { _, _ in serverParams }) { ch, handshake in
                handshake.whenSuccess { _ in peers.withLockedValue { $0.append([1]) } }
                return ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(PlainEcho()) }
            }
        )
        let server = try await echoServer(services: services)
        let port = try #require(server.localAddress?.port)
        let total = 8 << 20
        let done = group.next().makePromise(of: BulkResult.self)
        let params = QNSPConnection.ClientParameters(username: "tester", user: user, pinnedHostKey: host.publicKey)
        let (channel, handshake) = try await QNSPQUICBootstrap.connect(
            group: group,
            host: "127.0.0.1",
            port: port,
            alpn: QUICServiceRegistry.qnsp,
            parameters: params
        ) { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(QNSPBulk(total: total, done: done))
            }
        }.get()
        let info = try await handshake.get()
        #expect(info.username == "tester")
        #expect(info.hostKey == host.publicKey)
        let r = try await done.futureResult.get()
        #expect(r.receivedBytes == total)
        #expect(r.sent == r.received)
        #expect(peers.withLockedValue { $0.count } == 1)
        try await channel.close()
        // Closing the stream's channel closes the QUIC connection too.
        let deadline = NIODeadline.now() + .seconds(10)
        while try await server.connectionCount().get() > 0 && NIODeadline.now() < deadline {
            try await group.next().scheduleTask(in: .milliseconds(50)) {}.futureResult.get()
        }
        #expect(try await server.connectionCount().get() == 0)
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    @Test("the QUIC certificate is made once next to the host key, 0600, and loaded again")
    func certificateStore() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qnspquic-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hostKey = dir + "/host_key"
        _ = try QUICCertificateStore.loadOrCreate(hostKeyPath: hostKey)
        let certPath = QUICCertificateStore.certificatePath(hostKeyPath: hostKey)
        let keyPath = QUICCertificateStore.keyPath(hostKeyPath: hostKey)
        for p in [certPath, keyPath] {
            let attrs = try FileManager.default.attributesOfItem(atPath: p)
            #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600, "\(p)")
        }
        let first = try Data(contentsOf: URL(fileURLWithPath: certPath))
        _ = try QUICCertificateStore.loadOrCreate(hostKeyPath: hostKey)
        #expect(try Data(contentsOf: URL(fileURLWithPath: certPath)) == first)
        #expect(String(decoding: first, as: UTF8.self).hasPrefix("-----BEGIN CERTIFICATE-----"))
        try FileManager.default.removeItem(atPath: certPath)
        #expect(throws: QUICError.self) { _ = try QUICCertificateStore.loadOrCreate(hostKeyPath: hostKey) }
    }
}

/// Echoes the plaintext inside QNSP.
final class PlainEcho: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.write(data, promise: nil) }
    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
}

/// Sends `total` bytes once QNSP is established and completes when as many came back.
final class QNSPBulk: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let total: Int
    private var sent = 0, received = 0
    private var sentHash = SHA256(), receivedHash = SHA256()
    private var source = ByteSource(state: 7)
    private var started = false
    let done: EventLoopPromise<BulkResult>

    init(total: Int, done: EventLoopPromise<BulkResult>) {
        self.total = total
        self.done = done
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .established? = event as? QNSPUserEvent {
            started = true
            pump(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }
    func channelWritabilityChanged(context: ChannelHandlerContext) { if started { pump(context: context) } }
    private func pump(context: ChannelHandlerContext) {
        while sent < total && context.channel.isWritable {
            let n = min(64 * 1024, total - sent)
            var buf = context.channel.allocator.buffer(capacity: n)
            source.next(n, into: &buf)
            buf.withUnsafeReadableBytes { sentHash.update(bufferPointer: $0) }
            sent += n
            context.write(wrapOutboundOut(buf), promise: nil)
        }
        context.flush()
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let b = unwrapInboundIn(data)
        b.withUnsafeReadableBytes { receivedHash.update(bufferPointer: $0) }
        received += b.readableBytes
        if received == total {
            done.succeed(
                BulkResult(sent: sentHash.finalize(), received: receivedHash.finalize(), receivedBytes: received)
            )
        }
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) { done.fail(error) }
    func channelInactive(context: ChannelHandlerContext) { done.fail(QUICError.connectionClosed) }
}

/// Completes a promise once `after` bytes went past (inbound), passing everything on.
final class ProgressTap: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let after: Int
    var seen = 0
    let reached: EventLoopPromise<Void>
    var fired = false
    init(after: Int, reached: EventLoopPromise<Void>) {
        self.after = after
        self.reached = reached
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        seen += unwrapInboundIn(data).readableBytes
        if seen >= after && !fired {
            fired = true
            reached.succeed(())
        }
        context.fireChannelRead(data)
    }
    func channelInactive(context: ChannelHandlerContext) {
        if !fired {
            fired = true
            reached.fail(QUICError.connectionClosed)
        }
        context.fireChannelInactive()
    }
}
