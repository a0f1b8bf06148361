import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSP
import QNSPNIO
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Timestamps of the bytes crossing a client's socket (placed first in its pipeline).
final class WireTimeline: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let lock = NIOLock()
    var events: [(NIODeadline, Int, Int)] = []  // time, direction (0 out, 1 in), bytes
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let n = unwrapInboundIn(data).readableBytes
        lock.withLock { events.append((.now(), 1, n)) }
        context.fireChannelRead(data)
    }
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let n = unwrapOutboundIn(data).readableBytes
        lock.withLock { events.append((.now(), 0, n)) }
        context.write(data, promise: promise)
    }
}

/// Produces one kind of traffic once the session is up, and says when it started.
final class TrafficMaker: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    enum Kind: Int, CaseIterable { case idle, typing, bulk }
    let kind: Kind
    let started: EventLoopPromise<NIODeadline>
    var until = NIODeadline.now()
    init(kind: Kind, started: EventLoopPromise<NIODeadline>) { self.kind = kind; self.started = started }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .established? = event as? QNSPUserEvent {
            until = .now() + .milliseconds(1500)
            started.succeed(.now())
            switch kind {
            case .idle: break
            case .typing: keystroke(context: context)
            case .bulk: pump(context: context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
    func keystroke(context: ChannelHandlerContext) {
        guard NIODeadline.now() < until else { return }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: [0x61])), promise: nil)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .milliseconds(Int64.random(in: 80...250))) { bound.value.0.keystroke(context: bound.value.1) }
    }
    func pump(context: ChannelHandlerContext) {
        guard NIODeadline.now() < until else { return }
        var written = 0
        while context.channel.isWritable && written < 256 * 1024 {
            context.write(wrapOutboundOut(context.channel.allocator.buffer(repeating: 0x42, count: 16 * 1024)), promise: nil)
            written += 16 * 1024
        }
        context.flush()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .milliseconds(10)) { bound.value.0.pump(context: bound.value.1) }
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// Synchronous tests that wait on NIO futures (`.wait()`): an `await` needs a thread of Swift's
/// cooperative pool to resume, and in the full parallel run that pool (one thread per core) is
/// often held by tests blocked on subprocesses, which can stall an awaiting test for minutes.
@Suite("Traffic classifier", .serialized)
struct TrafficClassifierTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    /// Cells out and in per 50 ms bin over 1 s (from 0.25 s after the handshake), summarized.
    func sample(kind: TrafficMaker.Kind, padding: CoverTrafficPolicy?) throws -> [Double] {
        var options = QNSPBootstrap.Options()
        options.padding = padding
        let server = try QNSPBootstrap.bindServer(group: group, host: "127.0.0.1", port: 0, parameters: NIOKeys.serverParameters, options: options) { ch, _ in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Echo()) }
        }.wait()
        let port = try #require(server.localAddress?.port)
        let timeline = WireTimeline()
        let started = group.next().makePromise(of: NIODeadline.self)
        let (client, handshake) = try QNSPBootstrap.connect(group: group, host: "127.0.0.1", port: port, parameters: NIOKeys.clientParameters(), options: options) { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(timeline, position: .first)
                try ch.pipeline.syncOperations.addHandler(TrafficMaker(kind: kind, started: started))
            }
        }.wait()
        _ = try handshake.wait()
        let t0 = try started.futureResult.wait() + .milliseconds(250)
        try group.next().scheduleTask(deadline: t0 + .milliseconds(1000)) {}.futureResult.wait()
        try client.close().wait()
        try server.close().wait()
        var bins = [Double](repeating: 0, count: 40)
        for (t, direction, bytes) in timeline.lock.withLock({ timeline.events }) where t >= t0 {
            let i = Int((t - t0).nanoseconds / 50_000_000)
            if i < 20 { bins[direction * 20 + i] += Double(bytes) / 768 }
        }
        // Features: per direction, the log of the cells in the second and the number of busy bins.
        var features: [Double] = []
        for d in 0..<2 {
            let b = bins[(d * 20)..<(d * 20 + 20)]
            features.append(log1p(b.reduce(0, +)))
            features.append(Double(b.filter { $0 > 0 }.count) / 4)
        }
        return features
    }

    /// Leave-one-out accuracy of 3-nearest-neighbours (Euclidean) on labelled samples.
    static func knnAccuracy(_ samples: [([Double], Int)], k: Int = 3) -> Double {
        var correct = 0
        for (i, (x, label)) in samples.enumerated() {
            let neighbours = samples.enumerated().filter { $0.offset != i }.map { (_, s) in
                (zip(x, s.0).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }, s.1)
            }.sorted { $0.0 < $1.0 }.prefix(k)
            var votes = [Int: Int]()
            for (_, l) in neighbours { votes[l, default: 0] += 1 }
            // Ties go to the nearest neighbour's label.
            let best = votes.max { a, b in a.value != b.value ? a.value < b.value : neighbours.first?.1 != a.key }?.key
            if best == label { correct += 1 }
        }
        return Double(correct) / Double(samples.count)
    }

    @Test("k-NN on cell counts and busy 50-ms bins per direction tells idle, typing and bulk apart with --padding off, and is near chance (1/3) with constant", .timeLimit(.minutes(10)))
    func classifier() throws {
        var constant = CoverTrafficPolicy(mode: .constant)
        constant.constantCellsPerSecond = 400
        var accuracy: [String: Double] = [:]
        for (name, policy) in [("off", nil), ("constant", constant)] as [(String, CoverTrafficPolicy?)] {
            var samples: [([Double], Int)] = []
            for _ in 0..<6 {
                for kind in TrafficMaker.Kind.allCases {
                    samples.append((try sample(kind: kind, padding: policy), kind.rawValue))
                }
            }
            accuracy[name] = Self.knnAccuracy(samples)
        }
        print("traffic classifier (3-NN, leave-one-out, 18 sessions each): padding off \(accuracy["off"] ?? -1), constant \(accuracy["constant"] ?? -1) (chance 0.33)")
        #expect((accuracy["off"] ?? 0) >= 0.85)
        #expect((accuracy["constant"] ?? 1) <= 0.6)
        try group.syncShutdownGracefully()
    }
}
