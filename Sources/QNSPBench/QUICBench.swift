import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSP
import QNSPNIO
import QNSPQUIC
import QSSHSession

/// The QUIC carrier beside the TCP one, in one run (`qnsp-bench quic`):
/// - process against process: `qssh -o Transport=quic` and `-o Transport=tcp` to one qsshd
///   (which serves TCP and UDP on the same port), and OpenSSH `ssh` to a stock sshd for scale:
///   connect+exec `true` (median of N, interleaved) and bulk into `cat >/dev/null`;
/// - in process: a bare QUIC stream through `QUICEndpoint` with no QNSP inside (a discard ALPN
///   service of the bench's own), the stack's ceiling, and QNSP over QUIC against QNSP over TCP.
struct QUICBench {
    let dir: String
    let toolDir: String

    /// Connect+exec latencies (seconds) and the bulk rate (MB/s) of one client.
    struct Figures {
        var connect: [Double] = []
        var bulkMBps: Double = 0
    }

    struct Result {
        var quic = Figures()
        var tcp = Figures()
        var openssh: Figures?
        var sshVersion = ""
        var bareConnect: [Double] = []
        var bareMBps: Double = 0
        var qnspQUICMBps: Double = 0
        var qnspTCPMBps: Double = 0
    }

    /// The ALPN of the bench's discard service (never registered outside this process).
    static let discardALPN = "qnsp-bench-discard"

    func run(runs: Int, mib: Int, processes: Bool = true, log: (String) -> Void) throws -> Result {
        var result = Result()
        let bytes = mib << 20
        try inProcess(bytes: bytes, runs: runs, into: &result, log: log)
        if processes { try self.processes(bytes: bytes, runs: runs, into: &result, log: log) }
        return result
    }

    // MARK: In process

    private func inProcess(bytes: Int, runs: Int, into result: inout Result, log: (String) -> Void) throws {
        let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer {
            try? clientGroup.syncShutdownGracefully()
            try? serverGroup.syncShutdownGracefully()
        }
        let pem = try QUICCredentials.generateSelfSigned(commonName: "qnsp-bench")
        let credentials = try QUICCredentials(certificatePEM: pem.certificate, keyPEM: pem.key)
        var services = QUICServiceRegistry()
        let total = bytes
        services.register(Self.discardALPN) { ch, _ in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(CountingSink(total: total)) }
        }
        let server = try QUICEndpoint.bind(group: serverGroup, host: "127.0.0.1", port: 0, server: credentials, services: services).wait()
        defer { try? server.close().wait() }
        guard let address = server.localAddress else { throw BenchError("no QUIC address") }
        let client = try QUICEndpoint.bind(group: clientGroup, host: "127.0.0.1", port: 0).wait()
        defer { try? client.close().wait() }
        log("  bare QUIC: \(runs) handshakes (default Retry policy: none below 50 new connections a second) and \(bytes >> 20) MiB to a discard stream")
        for _ in 0..<runs {
            let start = Clock.now
            let connection = try client.connect(to: address, alpn: Self.discardALPN).wait()
            result.bareConnect.append(Clock.since(start))
            try? connection.close().wait()
        }
        // Best of three: one transfer is a few hundred ms, and a neighbour's burst can halve it.
        var rates: [Double] = []
        for _ in 0..<3 {
            let connection = try client.connect(to: address, alpn: Self.discardALPN).wait()
            let done = clientGroup.next().makePromise(of: UInt64.self)
            let source = BareSource(total: bytes, done: done)
            let stream = try connection.openStream { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(source) }
            }.wait()
            let start = try done.futureResult.wait()
            rates.append(Double(bytes) / (Double(Clock.now - start) / 1e9) / 1e6)
            try? stream.close().wait()
            try? connection.close().wait()
        }
        result.bareMBps = rates.max() ?? 0

        // QNSP over QUIC against QNSP over TCP, both in process (no SSH-2, no processes).
        let tunnel = try TunnelBench()
        defer { tunnel.shutdown() }
        result.qnspTCPMBps = try tunnel.bulk(total: bytes, cipher: .aes256GCM, cellSize: 768)
        var qnspServices = QUICServiceRegistry()
        let serverParameters = tunnel.serverParameters
        qnspServices.register(QUICServiceRegistry.qnsp, QNSPQUICBootstrap.service(parametersFor: { _, _ in serverParameters }) { ch, _ in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(CountingSink(total: total)) }
        })
        let qnspServer = try QUICEndpoint.bind(group: serverGroup, host: "127.0.0.1", port: 0, server: credentials, services: qnspServices).wait()
        defer { try? qnspServer.close().wait() }
        guard let qnspPort = qnspServer.localAddress?.port else { throw BenchError("no QUIC port") }
        let done = clientGroup.next().makePromise(of: UInt64.self)
        let source = BulkSource(total: bytes, done: done)
        let (channel, handshake) = try QNSPQUICBootstrap.connect(
            group: clientGroup, host: "127.0.0.1", port: qnspPort, alpn: QUICServiceRegistry.qnsp, parameters: tunnel.clientParameters
        ) { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(source) } }.wait()
        _ = try handshake.wait()
        let start = try done.futureResult.wait()
        result.qnspQUICMBps = Double(bytes) / (Double(Clock.now - start) / 1e9) / 1e6
        try? channel.close().wait()
    }

    // MARK: Processes

    private func processes(bytes: Int, runs: Int, into result: inout Result, log: (String) -> Void) throws {
        let keygen = toolDir + "/qssh-keygen", qsshd = toolDir + "/qsshd", qssh = toolDir + "/qssh"
        try ProcessRunner.shell("'\(keygen)' -q -t host -f '\(dir)/vhost' -N '' && '\(keygen)' -q -t user -f '\(dir)/vid' -N '' && cp '\(dir)/vid.pub' '\(dir)/vauth'")
        let (server, text) = try ProcessRunner.startServer(
            [qsshd, "-p", "0", "-l", "127.0.0.1", "-h", dir + "/vhost", "--authorized-keys", dir + "/vauth"] + ProcessBench.benchLimits,
            marker: "QUIC on UDP")
        defer { ProcessRunner.stop(server) }
        guard let r = text.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression),
              let port = Int(text[r].split(separator: ":").last ?? "") else { throw BenchError("qsshd: \(text)") }
        let base = "'\(qssh)' -p \(port) -i '\(dir)/vid' --known-hosts '\(dir)/vkh' -o StrictHostKeyChecking=accept-new"
        let quic = base + " -o Transport=quic 127.0.0.1", tcp = base + " -o Transport=tcp 127.0.0.1"
        var ssh: String?
        var stock: StockSSHD?
        if StockSSHD.binary != nil, FileManager.default.isExecutableFile(atPath: "/usr/bin/ssh") {
            let s = try StockSSHD.start(dir: dir)
            stock = s
            ssh = "ssh -F /dev/null -p \(s.port) -i '\(dir)/ssh_id' -o UserKnownHostsFile='\(dir)/ssh_kh' -o StrictHostKeyChecking=accept-new -o BatchMode=yes -c aes256-gcm@openssh.com -T 127.0.0.1"
            result.sshVersion = try ProcessRunner.shell("ssh -V 2>&1").output.trimmingCharacters(in: .whitespacesAndNewlines)
            result.openssh = Figures()
        }
        defer { stock?.stop() }
        // Warm up (and pin the host keys), then interleave so that machine load hits every client alike.
        for command in [quic, tcp] + (ssh.map { [$0] } ?? []) {
            let r = try ProcessRunner.shell(command + " true </dev/null")
            guard r.status == 0 else { throw BenchError("'\(command) true' failed with status \(r.status)") }
        }
        log("  processes: \(runs) rounds of connect+exec 'true' (qssh QUIC, qssh TCP\(ssh == nil ? "" : ", ssh")), then \(bytes >> 20) MiB each")
        for _ in 0..<runs {
            result.quic.connect.append(try Self.timed(quic + " true </dev/null"))
            result.tcp.connect.append(try Self.timed(tcp + " true </dev/null"))
            if let ssh { result.openssh?.connect.append(try Self.timed(ssh + " true </dev/null")) }
        }
        // Bulk: best of two for each, alternating.
        var q: [Double] = [], t: [Double] = [], o: [Double] = []
        for _ in 0..<2 {
            q.append(Double(bytes) / (try Self.timed("head -c \(bytes) /dev/zero | " + quic + " 'cat >/dev/null'")) / 1e6)
            t.append(Double(bytes) / (try Self.timed("head -c \(bytes) /dev/zero | " + tcp + " 'cat >/dev/null'")) / 1e6)
            if let ssh { o.append(Double(bytes) / (try Self.timed("head -c \(bytes) /dev/zero | " + ssh + " 'cat >/dev/null'")) / 1e6) }
        }
        result.quic.bulkMBps = q.max() ?? 0
        result.tcp.bulkMBps = t.max() ?? 0
        result.openssh?.bulkMBps = o.max() ?? 0
    }

    /// Seconds one shell command takes; a failure is an error.
    static func timed(_ command: String) throws -> Double {
        let start = Clock.now
        let r = try ProcessRunner.shell(command)
        guard r.status == 0 else { throw BenchError("'\(command)' failed with status \(r.status)") }
        return Clock.since(start)
    }
}

/// Writes `total` bytes on a raw stream as fast as it is writable; completes `done` with the start
/// time once the discard service's one-byte acknowledgement of the last byte arrives.
final class BareSource: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let total: Int
    let done: EventLoopPromise<UInt64>
    var sent = 0
    var start: UInt64 = 0
    var chunk: ByteBuffer?

    init(total: Int, done: EventLoopPromise<UInt64>) { self.total = total; self.done = done }

    func channelActive(context: ChannelHandlerContext) {
        var b = context.channel.allocator.buffer(capacity: 64 * 1024)
        b.writeRepeatingByte(0x5a, count: 64 * 1024)
        chunk = b
        start = Clock.now
        pump(context: context)
        context.fireChannelActive()
    }
    func channelWritabilityChanged(context: ChannelHandlerContext) { pump(context: context) }
    func pump(context: ChannelHandlerContext) {
        guard let chunk else { return }
        while sent < total && context.channel.isWritable {
            let n = min(chunk.readableBytes, total - sent)
            sent += n
            context.write(wrapOutboundOut(chunk.getSlice(at: chunk.readerIndex, length: n) ?? chunk), promise: nil)
        }
        context.flush()
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { done.succeed(start) }
    func errorCaught(context: ChannelHandlerContext, error: Error) { done.fail(error) }
    func channelInactive(context: ChannelHandlerContext) { done.fail(BenchError("stream closed before the transfer finished")) }
}
