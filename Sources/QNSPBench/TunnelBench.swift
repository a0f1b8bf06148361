import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSP
import QNSPCrypto
import QNSPNIO

/// Handshake latency and bulk throughput of QNSP over loopback TCP, client and server in this process.
final class TunnelBench {
    let group: MultiThreadedEventLoopGroup
    let serverGroup: MultiThreadedEventLoopGroup
    let host: HostKeyPair
    let user: UserKeyPair

    init() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        host = try HostKeyPair.generate()
        user = try UserKeyPair.generate()
    }

    func shutdown() {
        try? group.syncShutdownGracefully()
        try? serverGroup.syncShutdownGracefully()
    }

    /// One handshake guard for the run, without the per-source rate limit or cookies (the bench is
    /// one source making hundreds of handshakes a second on purpose; the replay filter stays on).
    let handshakeGuard: QNSPHandshakeGuard = {
        var policy = QNSPHandshakeGuard.Policy()
        policy.perSourcePerSecond = 0
        policy.cookies = .never
        return QNSPHandshakeGuard(policy: policy)
    }()

    var serverParameters: QNSPConnection.ServerParameters {
        let userKey = user.publicKey
        return .init(hostKeys: [host], handshakeGuard: handshakeGuard) { _, key in key == userKey ? .accept : .reject("unknown key") }
    }
    var clientParameters: QNSPConnection.ClientParameters {
        .init(username: "bench", user: user, pinnedHostKey: host.publicKey)
    }

    /// Runs `count` handshakes one after another; returns each one's latency in seconds
    /// (TCP connect through established session, as the client sees it).
    func handshakes(count: Int, cipher: AEADAlgorithm) throws -> [Double] {
        var options = QNSPBootstrap.Options()
        options.configuration.ciphers = [cipher]
        let server = try QNSPBootstrap.bindServer(group: serverGroup, host: "127.0.0.1", port: 0, parameters: serverParameters, options: options) {
            ch, _ in ch.eventLoop.makeSucceededVoidFuture()
        }.wait()
        defer { try? server.close().wait() }
        guard let port = server.localAddress?.port else { throw BenchError("no port") }
        var latencies: [Double] = []
        for _ in 0..<count {
            let start = Clock.now
            let (channel, handshake) = try QNSPBootstrap.connect(group: group, host: "127.0.0.1", port: port, parameters: clientParameters, options: options).wait()
            _ = try handshake.wait()
            latencies.append(Clock.since(start))
            try? channel.close().wait()
        }
        return latencies
    }

    /// Sends `total` bytes client → server over plain loopback TCP between the same two event loop
    /// threads, with the same source and sink and no QNSP: the carrier's own ceiling.
    func bulkPlainTCP(total: Int) throws -> Double {
        let server = try ServerBootstrap(group: serverGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(CountingSink(total: total))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }
        guard let port = server.localAddress?.port else { throw BenchError("no port") }
        let done = group.next().makePromise(of: UInt64.self)
        let source = BulkSource(total: total, done: done)
        let channel = try ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(source)
                }
            }
            .connect(host: "127.0.0.1", port: port).wait()
        try channel.eventLoop.submit { source.begin(context: nil, channel: channel) }.wait()
        let start = try done.futureResult.wait()
        let seconds = Double(Clock.now - start) / 1e9
        try? channel.close().wait()
        return Double(total) / seconds / 1e6
    }

    /// CPU time (user + system, ns) the two event loop threads have used so far.
    func threadCPU() throws -> (client: UInt64, server: UInt64) {
        let c = try group.next().submit { Self.callingThreadCPU() }.wait()
        let s = try serverGroup.next().submit { Self.callingThreadCPU() }.wait()
        return (c, s)
    }

    /// "CPU per GiB: sender … ms, receiver … ms" between two ``threadCPU()`` readings.
    static func cpuPerGiB(_ before: (client: UInt64, server: UInt64), _ after: (client: UInt64, server: UInt64), bytes: Int) -> String {
        let gib = Double(bytes) / Double(1 << 30)
        let sender = Double(after.client &- before.client) / 1e6 / gib
        let receiver = Double(after.server &- before.server) / 1e6 / gib
        return String(format: "CPU per GiB: sender %.0f ms, receiver %.0f ms", sender, receiver)
    }

    /// User + system CPU time (ns) of the calling thread.
    static func callingThreadCPU() -> UInt64 {
        var t = timespec()
        guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) == 0 else { return 0 }
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }

    /// Sends `total` bytes client → server through the tunnel; the server acknowledges the last byte
    /// with one byte back. Returns MB/s over the whole transfer (handshake excluded).
    func bulk(total: Int, cipher: AEADAlgorithm, cellSize: Int) throws -> Double {
        var options = QNSPBootstrap.Options()
        options.configuration.ciphers = [cipher]
        options.configuration.cellSize = cellSize
        let server = try QNSPBootstrap.bindServer(group: serverGroup, host: "127.0.0.1", port: 0, parameters: serverParameters, options: options) {
            ch, _ in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(CountingSink(total: total)) }
        }.wait()
        defer { try? server.close().wait() }
        guard let port = server.localAddress?.port else { throw BenchError("no port") }
        let done = group.next().makePromise(of: UInt64.self)
        let source = BulkSource(total: total, done: done)
        let (channel, handshake) = try QNSPBootstrap.connect(group: group, host: "127.0.0.1", port: port, parameters: clientParameters, options: options) {
            ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(source) }
        }.wait()
        _ = try handshake.wait()
        let start = try done.futureResult.wait()
        let seconds = Double(Clock.now - start) / 1e9
        try? channel.close().wait()
        return Double(total) / seconds / 1e6
    }
}

public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// Writes `total` bytes as fast as the channel lets it; completes `done` with the start time once the
/// server's one-byte acknowledgement arrives.
final class BulkSource: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let total: Int
    let done: EventLoopPromise<UInt64>
    var sent = 0
    var start: UInt64 = 0
    var chunk: ByteBuffer?

    init(total: Int, done: EventLoopPromise<UInt64>) { self.total = total; self.done = done }

    var context: ChannelHandlerContext?
    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .established? = event as? QNSPUserEvent { begin(context: context, channel: context.channel) }
        context.fireUserInboundEventTriggered(event)
    }

    /// Starts the transfer (on the channel's event loop).
    func begin(context: ChannelHandlerContext?, channel: Channel) {
        guard let context = context ?? self.context else { return }
        var b = channel.allocator.buffer(capacity: 64 * 1024)
        b.writeRepeatingByte(0xa5, count: 64 * 1024)
        chunk = b
        start = Clock.now
        pump(context: context)
    }
    func channelWritabilityChanged(context: ChannelHandlerContext) { pump(context: context) }
    func pump(context: ChannelHandlerContext) {
        guard let chunk else { return }
        while sent < total && context.channel.isWritable {
            let n = min(chunk.readableBytes, total - sent)
            sent += n  // before write: a write can re-enter pump through channelWritabilityChanged
            context.write(wrapOutboundOut(chunk.getSlice(at: chunk.readerIndex, length: n) ?? chunk), promise: nil)
        }
        context.flush()
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { done.succeed(start) }
    func errorCaught(context: ChannelHandlerContext, error: Error) { done.fail(error) }
    func channelInactive(context: ChannelHandlerContext) { done.fail(BenchError("tunnel closed before the transfer finished")) }
}

/// Counts received plaintext and answers one byte when `total` has arrived.
final class CountingSink: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let total: Int
    var received = 0
    init(total: Int) { self.total = total }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        if received == total {
            var ack = context.channel.allocator.buffer(capacity: 1)
            ack.writeInteger(UInt8(1))
            context.writeAndFlush(wrapOutboundOut(ack), promise: nil)
        }
    }
}
