import Crypto
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import QNSP
import QNSPCrypto
import QNSPNIO
import Testing

/// Records every write's size and the first bytes each way, directly above the socket.
final class WriteRecorder: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let lock = NIOLock()
    let keep: Int
    var writeSizes: [Int] = []
    var outboundBytes: [UInt8] = [], inboundBytes: [UInt8] = []
    /// What this side wrote before the first byte arrived (a client's first flight).
    var beforeAnswer: [UInt8] = []
    var answered = false
    init(keep: Int = 64 * 1024) { self.keep = keep }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let b = unwrapInboundIn(data)
        lock.withLock {
            answered = true
            if inboundBytes.count < keep { inboundBytes += b.readableBytesView.prefix(keep - inboundBytes.count) }
        }
        context.fireChannelRead(data)
    }
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let b = unwrapOutboundIn(data)
        lock.withLock {
            writeSizes.append(b.readableBytes)
            if outboundBytes.count < keep { outboundBytes += b.readableBytesView.prefix(keep - outboundBytes.count) }
            if !answered { beforeAnswer += b.readableBytesView }
        }
        context.write(data, promise: promise)
    }
}

/// Connects, sends `bytes`, and reports what came back and when the server closed.
final class ProbeClient: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    struct Result: Sendable {
        var received: Int
        var seconds: Double
        var error: String?
    }
    let bytes: [UInt8]
    let done: EventLoopPromise<Result>
    var received = 0
    var start = NIODeadline.now()
    var error: String?
    init(bytes: [UInt8], done: EventLoopPromise<Result>) { self.bytes = bytes; self.done = done }
    func channelActive(context: ChannelHandlerContext) {
        start = .now()
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { received += unwrapInboundIn(data).readableBytes }
    func errorCaught(context: ChannelHandlerContext, error: Error) { self.error = "\(error)"; context.close(promise: nil) }
    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(Result(received: received, seconds: Double((NIODeadline.now() - start).nanoseconds) / 1e9, error: error))
    }
}

/// Keeps the errors a server's connections saw (for the failure message of a test).
final class ErrorNote: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let errors: NIOLockedValueBox<[String]>
    init(_ errors: NIOLockedValueBox<[String]>) { self.errors = errors }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        errors.withLockedValue { $0.append("\(error)") }
        context.fireErrorCaught(error)
    }
}

/// Synchronous tests that wait on NIO futures (`.wait()`): an `await` needs a thread of Swift's
/// cooperative pool to resume, and in the full parallel run that pool (one thread per core) is
/// often held by tests blocked on subprocesses, which can stall an awaiting test for minutes.
@Suite("Stealth over NIO", .serialized)
struct StealthTunnelTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    static let line = StealthLine(hostKey: NIOKeys.host)

    static func options(policy: StealthSession.ProbePolicy = .init()) -> QNSPBootstrap.Options {
        var o = QNSPBootstrap.Options()
        o.stealth = StealthOptions(line: line, probePolicy: policy)
        return o
    }

    let serverErrors = NIOLockedValueBox<[String]>([])

    func startEcho(options: QNSPBootstrap.Options, recorder: WriteRecorder? = nil, admit: (@Sendable (Channel) -> String?)? = nil) throws -> Channel {
        let errors = serverErrors
        return try QNSPBootstrap.bindServer(
            group: group, host: "127.0.0.1", port: 0, parameters: NIOKeys.serverParameters, options: options, admit: admit
        ) { ch, _ in
            ch.eventLoop.makeCompletedFuture {
                if let recorder { try ch.pipeline.syncOperations.addHandler(recorder, position: .first) }
                try ch.pipeline.syncOperations.addHandler(ErrorNote(errors))
                try ch.pipeline.syncOperations.addHandler(Echo())
            }
        }.wait()
    }

    /// An 8 MiB echo through a server; returns what both sides wrote just above their sockets.
    func echoSession(stealth: Bool) throws -> (client: WriteRecorder, server: WriteRecorder) {
        let serverRecorder = WriteRecorder(), clientRecorder = WriteRecorder()
        let options = stealth ? Self.options() : QNSPBootstrap.Options()
        let server = try startEcho(options: options, recorder: serverRecorder)
        let port = try #require(server.localAddress?.port)
        let total = 8 << 20
        let done = group.next().makePromise(of: (SHA256Digest, SHA256Digest).self)
        let (client, handshake) = try QNSPBootstrap.connect(
            group: group, host: "127.0.0.1", port: port, parameters: NIOKeys.clientParameters(), options: options
        ) { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(clientRecorder, position: .first)
                try ch.pipeline.syncOperations.addHandler(BulkClient(total: total, done: done))
            }
        }.wait()
        #expect(try handshake.wait().username == "tester")
        let (sent, received): (SHA256Digest, SHA256Digest)
        do {
            (sent, received) = try done.futureResult.wait()
        } catch {
            Issue.record("\(stealth ? "stealth" : "default") session failed: \(error); server saw \(serverErrors.withLockedValue { $0 })")
            throw error
        }
        #expect(sent == received, "echoed data differs")
        try client.close().wait()
        try server.close().wait()
        return (clientRecorder, serverRecorder)
    }

    @Test("a QNSP tunnel through stealth: 8 MiB echoed with the hash checked; the first 64 KiB each way look uniform and no write is on the 768 grid; default mode fails the same tests")
    func tunnelLooksUniform() throws {
        let (c, s) = try echoSession(stealth: true)
        let (dc, ds) = try echoSession(stealth: false)
        let zLimit = ByteStatistics.zCritical(tests: 8)
        for (name, r, mustPass) in [("stealth c→s", c, true), ("stealth s→c", s, true), ("default c→s", dc, false), ("default s→c", ds, false)] {
            let bytes = r.lock.withLock { r.outboundBytes }
            let sizes = r.lock.withLock { r.writeSizes }
            #expect(bytes.count == 64 * 1024)
            let chi = ByteStatistics.chiSquare(bytes)
            let z = ByteStatistics.bitFrequencyZ(bytes).map(abs).max() ?? 0
            let onGrid = Double(sizes.filter { $0 % 768 == 0 }.count) / Double(max(1, sizes.count))
            print("\(name): first 64 KiB chi2 \(chi) (critical \(ByteStatistics.chiSquareCritical255)), entropy \(ByteStatistics.entropy(bytes)) bits/byte, max |z| \(z); writes \(sizes.count), share on the 768 grid \(onGrid)")
            if mustPass {
                #expect(chi < ByteStatistics.chiSquareCritical255, "\(name) chi2 \(chi)")
                #expect(z < zLimit, "\(name) bit frequency z \(z)")
                #expect(onGrid < 0.01, "\(name): \(onGrid) of writes are whole cells")
            } else {
                #expect(chi > ByteStatistics.chiSquareCritical255, "\(name): the test cannot tell default mode apart")
                #expect(onGrid == 1, "\(name)")
            }
        }
        try group.syncShutdownGracefully()
    }

    /// A client's valid first flight made without a network (Rc, hello, ClientHello frames).
    static func firstFlight() throws -> [UInt8] {
        let conn = QNSPConnection(client: NIOKeys.clientParameters())
        try conn.start()
        let s = try StealthSession(role: .client, line: line)
        try s.seal(conn.takeOutbound())
        return s.takeOutbound().flatMap { $0 }
    }

    func probe(port: Int, bytes: [UInt8]) -> EventLoopFuture<ProbeClient.Result> {
        let done = group.next().makePromise(of: ProbeClient.Result.self)
        ClientBootstrap(group: group)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(ProbeClient(bytes: bytes, done: done)) } }
            .connect(host: "127.0.0.1", port: port)
            .whenFailure { done.fail($0) }
        return done.futureResult
    }

    @Test("probes over TCP (random 1..10,000 bytes, truncated, one flipped bit, replayed, default-mode ClientHello) get no byte back and are closed alike, at the random deadline", .timeLimit(.minutes(2)))
    func probesGetSilence() throws {
        let policy = StealthSession.ProbePolicy(byteLimit: 20_000...30_000, deadlineMilliseconds: 400...1_200)
        let server = try startEcho(options: Self.options(policy: policy))
        let port = try #require(server.localAddress?.port)
        // A real client's first flight, to replay (after it connected for real).
        let recorder = WriteRecorder(keep: 0)
        let (client, handshake) = try QNSPBootstrap.connect(
            group: group, host: "127.0.0.1", port: port, parameters: NIOKeys.clientParameters(), options: Self.options()
        ) { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(recorder, position: .first) } }.wait()
        _ = try handshake.wait()
        try client.close().wait()
        let replay = recorder.lock.withLock { recorder.beforeAnswer }
        #expect(replay.count > 1000)

        var rng = SystemRandomNumberGenerator()
        let defaultHello: [UInt8] = try {
            let c = QNSPConnection(client: NIOKeys.clientParameters())
            try c.start()
            return c.takeOutbound()
        }()
        var kinds: [(String, () throws -> [UInt8])] = []
        kinds.append(("random", { (0..<Int.random(in: 1...10_000)).map { _ in UInt8.random(in: 0...255) } }))
        kinds.append(("truncated", { Array(try Self.firstFlight().prefix(Int.random(in: 1..<77))) }))
        kinds.append(("flipped bit", {
            var f = try Self.firstFlight()
            f[Int.random(in: 0..<77)] ^= 1 << UInt8.random(in: 0..<8)
            return f
        }))
        kinds.append(("replayed", { replay }))
        kinds.append(("default-mode ClientHello", { defaultHello }))
        _ = rng.next()
        var futures: [(String, EventLoopFuture<ProbeClient.Result>)] = []
        for (name, make) in kinds {
            for _ in 0..<6 { futures.append((name, probe(port: port, bytes: try make()))) }
        }
        var byKind: [String: [Double]] = [:]
        for (name, f) in futures {
            let r = try f.wait()
            #expect(r.received == 0, "\(name) got \(r.received) bytes back")
            #expect(r.error == nil, "\(name): \(r.error ?? "")")
            // Closed by the deadline (0.4–1.2 s after the accept; slack for a loaded machine), never at once.
            #expect(r.seconds > 0.35 && r.seconds < 3, "\(name) closed after \(r.seconds) s")
            byKind[name, default: []].append(r.seconds)
        }
        for (name, t) in byKind.sorted(by: { $0.key < $1.key }) {
            print("probe \(name): close after \(t.map { (($0 * 100).rounded() / 100) }) s")
        }
        try server.close().wait()
        try group.syncShutdownGracefully()
    }

    @Test("the byte limit: a 10,000-byte probe is closed at once when the limit is 3,000, while a 2,000-byte one stays open", .timeLimit(.minutes(3)))
    func byteLimitCloses() throws {
        let policy = StealthSession.ProbePolicy(byteLimit: 3000...3000, deadlineMilliseconds: 20_000...20_000)
        let server = try startEcho(options: Self.options(policy: policy))
        let port = try #require(server.localAddress?.port)
        let small = probe(port: port, bytes: (0..<2000).map { _ in UInt8.random(in: 0...255) })
        let big = try probe(port: port, bytes: (0..<10_000).map { _ in UInt8.random(in: 0...255) }).wait()
        #expect(big.received == 0 && big.seconds < 10, "closed after \(big.seconds) s")
        // The small probe is still open: it ends only when the server closes (which it must not have done yet).
        let smallEnded = NIOLockedValueBox(false)
        small.whenComplete { _ in smallEnded.withLockedValue { $0 = true } }
        #expect(!smallEnded.withLockedValue { $0 }, "the 2,000-byte probe was closed before its deadline")
        try server.close().wait()
        try group.syncShutdownGracefully()
    }

    @Test("a stealth server that refuses a connection (admit) answers even a valid client with silence, then closes", .timeLimit(.minutes(3)))
    func admitRefusedIsSilent() throws {
        let policy = StealthSession.ProbePolicy(byteLimit: 20_000...30_000, deadlineMilliseconds: 300...600)
        let server = try startEcho(options: Self.options(policy: policy), admit: { _ in "busy" })
        let port = try #require(server.localAddress?.port)
        let r = try probe(port: port, bytes: try Self.firstFlight()).wait()
        #expect(r.received == 0 && r.error == nil)
        #expect(r.seconds > 0.25 && r.seconds < 3, "closed after \(r.seconds) s")
        try server.close().wait()
        try group.syncShutdownGracefully()
    }
}
