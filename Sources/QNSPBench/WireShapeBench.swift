import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSP

/// `qnsp-bench --wire-shape`: what `qnsp serve` / `qnsp connect` themselves put on a loopback
/// connection in each mode, captured by a relay between them (the relay's reads stand for TCP
/// segments; in bulk they cut across cells, so the grid share understates how regular default
/// mode's writes are): byte entropy, chi-square against uniform, share of read lengths on the 768-byte cell
/// grid, the first-packet rules of Wu et al. on the client's first segment, and the bytes on the
/// wire per application byte (cover traffic overhead).
struct WireShapeBench {
    let toolDir: String
    let dir: String

    /// What the relay saw on one connection.
    final class Capture: @unchecked Sendable {
        let lock = NIOLock()
        var first: [[UInt8]] = [[], []]
        var reads: [[Int]] = [[], []]
        var totals = [0, 0]
        func reset() {
            lock.withLock {
                first = [[], []]
                reads = [[], []]
                totals = [0, 0]
            }
        }
        func add(_ direction: Int, _ bytes: ByteBuffer) {
            lock.withLock {
                reads[direction].append(bytes.readableBytes)
                totals[direction] += bytes.readableBytes
                if first[direction].count < 64 * 1024 { first[direction] += bytes.readableBytesView.prefix(64 * 1024 - first[direction].count) }
            }
        }
    }

    final class RelaySide: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let peer: Channel
        let capture: Capture
        let direction: Int
        init(peer: Channel, capture: Capture, direction: Int) { self.peer = peer; self.capture = capture; self.direction = direction }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let b = unwrapInboundIn(data)
            capture.add(direction, b)
            peer.writeAndFlush(b, promise: nil)
        }
        func channelInactive(context: ChannelHandlerContext) { peer.close(promise: nil) }
        func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
    }

    /// Listens on a free port and relays each connection to `target`, recording into `capture`.
    static func relay(group: EventLoopGroup, target: Int, capture: Capture) throws -> Channel {
        try ServerBootstrap(group: group)
            .childChannelOption(.autoRead, value: false)
            // Reads of up to 64 KiB (NIO's adaptive allocator starts at 2 KiB and would cut the first segment).
            .childChannelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65536))
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65536))
                    .connect(host: "127.0.0.1", port: target)
                    .flatMapThrowing { outbound in
                        try outbound.pipeline.syncOperations.addHandler(RelaySide(peer: inbound, capture: capture, direction: 1))
                        try inbound.pipeline.syncOperations.addHandler(RelaySide(peer: outbound, capture: capture, direction: 0))
                    }
                    .flatMap { inbound.setOption(.autoRead, value: true) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    struct Row {
        var mode: String
        var entropy: Double
        var chiC2S: Double
        var chiS2C: Double
        var onGrid: Double
        var verdict: String
        var overhead: Double
        var idleBytesPerSecond: Double
    }

    func run(mib: Int) throws -> [Row] {
        let keygen = toolDir + "/qssh-keygen", qnsp = toolDir + "/qnsp"
        try ProcessRunner.shell("'\(keygen)' -q -t host -f '\(dir)/whost' -N '' && '\(keygen)' -q -t user -f '\(dir)/wid' -N '' && cp '\(dir)/wid.pub' '\(dir)/wauth'")
        let line = try ProcessRunner.shell("'\(keygen)' --stealth-line -f '\(dir)/whost'").output.trimmingCharacters(in: .whitespacesAndNewlines)
        try (line + "\n").write(toFile: dir + "/wline", atomically: true, encoding: .utf8)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let modes: [(String, [String], [String])] = [
            ("default", [], []),
            ("stealth", ["--stealth"], ["--stealth", dir + "/wline"]),
            ("stealth, padding random", ["--stealth", "--padding", "random"], ["--stealth", dir + "/wline", "--padding", "random"]),
            ("stealth, padding constant", ["--stealth", "--padding", "constant"], ["--stealth", dir + "/wline", "--padding", "constant"]),
            ("default, padding constant", ["--padding", "constant"], ["--padding", "constant"]),
        ]
        var rows: [Row] = []
        for (name, serverArgs, clientArgs) in modes {
            let (server, text) = try ProcessRunner.startServer(
                [qnsp, "serve", "-p", "0", "-h", dir + "/whost", "--authorized-keys", dir + "/wauth", "--echo"] + serverArgs, marker: "\n")
            defer { ProcessRunner.stop(server) }
            guard let r = text.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression),
                  let port = Int(text[r].split(separator: ":").last ?? "") else { throw BenchError("qnsp serve: \(text)") }
            let client = "'\(qnsp)' connect -i '\(dir)/wid' --known-hosts '\(dir)/wkh' --accept-new " + clientArgs.map { "'\($0)'" }.joined(separator: " ")
            let transfer = Capture()
            let relay = try Self.relay(group: group, target: port, capture: transfer)
            defer { relay.close(promise: nil) }
            let rport = relay.localAddress?.port ?? 0
            // A first connection through the relay pins the host key under the relay's port, so
            // that every capture starts with a known-host hello.
            _ = try ProcessRunner.shell("echo | \(client) -p \(rport) 127.0.0.1 >/dev/null")
            // An idle session of 2 s (what cover traffic costs when nothing is said).
            transfer.reset()
            let start = Date()
            _ = try ProcessRunner.shell("sleep 2 | \(client) -p \(rport) 127.0.0.1 >/dev/null")
            let idleSeconds = Date().timeIntervalSince(start)
            let idleTotal = transfer.lock.withLock { transfer.totals[0] + transfer.totals[1] }
            // A transfer: `mib` MiB echoed.
            transfer.reset()
            let bytes = mib << 20
            let t = try ProcessRunner.shell("head -c \(bytes) /dev/urandom | \(client) -p \(rport) 127.0.0.1 >/dev/null")
            guard t.status == 0 else { throw BenchError("\(name): qnsp connect failed with status \(t.status)") }
            let (first, reads, totals) = transfer.lock.withLock { (transfer.first, transfer.reads, transfer.totals) }
            let allReads = reads[0] + reads[1]
            let firstPacket = Array(first[0].prefix(reads[0].first ?? 0))
            rows.append(Row(
                mode: name,
                entropy: ByteStatistics.entropy(first[0] + first[1]),
                chiC2S: ByteStatistics.chiSquare(first[0]),
                chiS2C: ByteStatistics.chiSquare(first[1]),
                onGrid: Double(allReads.filter { $0 % 768 == 0 }.count) / Double(max(1, allReads.count)),
                verdict: ByteStatistics.firstPacketVerdict(firstPacket).description,
                overhead: Double(totals[0] + totals[1]) / Double(2 * bytes) - 1,
                idleBytesPerSecond: Double(idleTotal) / idleSeconds))
        }
        return rows
    }
}
