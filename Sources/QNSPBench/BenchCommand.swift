import ArgumentParser
import Foundation
import QNSP
import QNSPCrypto
import QOPAQUE

/// `qnsp-bench`: QNSP handshake and throughput figures beside raw AES-GCM and stock OpenSSH, in one run.
public struct BenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "qnsp-bench",
        abstract: "Measure QNSP handshakes and throughput beside raw AES-GCM and OpenSSH.",
        discussion: """
            Build with '-c release'. Everything runs on 127.0.0.1 in this process or in children it starts:
            an in-process QNSP server and client (one event loop thread each), raw single-core AEAD loops,
            and, process against process, 'qnsp serve --discard'/'qnsp connect' beside a stock sshd/ssh
            (started with throwaway keys when /usr/sbin/sshd exists; skipped otherwise, or with --no-openssh).
            MB/s are 10^6 bytes per second of application data.
            """)

    @Option(name: .long, help: "Handshakes to time in process.") var handshakes = 300
    @Option(name: .long, help: "MiB to push through the in-process tunnel.") var mib = 512
    @Option(name: .long, help: "Seconds per raw AEAD measurement.") var seconds = 2.0
    @Option(name: .long, help: "Process-level connections to time (qnsp and ssh each).") var runs = 20
    @Option(name: .long, help: "MiB to pipe through qnsp connect and ssh.") var processMib = 256
    @Flag(name: .long, help: "Skip the process-level comparison with OpenSSH.") var noOpenssh = false
    @Flag(name: .long, help: "Only the file copy comparison: qscp to qsshd against OpenSSH scp to sshd.") var copy = false
    @Option(name: .long, help: "MiB of the file copied with --copy.") var copyMib = 1024
    @Option(name: .long, help: "Rounds of --copy (qscp and scp alternate).") var copyRounds = 3
    @Option(name: .long, help: ArgumentHelp("The qscp that --copy measures (default: the one next to qnsp-bench), e.g. a --static-swift-stdlib build.", valueName: "path"))
    var copyQscp: String?
    @Flag(name: .long, help: "Only the OPAQUE login cost (QOPAQUE: client and server halves, qpq's Argon2id parameters).")
    var opaque = false
    @Option(name: .long, help: "Registrations and logins timed with --opaque.") var opaqueRuns = 20
    @Option(name: .long, help: ArgumentHelp("Only the idle-session test: this many logged-in sessions against one qsshd (clients in this process), held with keepalives.", valueName: "n"))
    var idleSessions: Int?
    @Option(name: .long, help: "Seconds --idle-sessions holds them.") var idleSeconds = 300.0
    @Option(name: .long, help: ArgumentHelp("Only the cell path on one thread (seal and open, no sockets) over this many MiB, for profiling.", valueName: "MiB"))
    var cellPath: Int?
    @Flag(name: .long, help: "Only the clients' start-up cost: bare start, time to the first byte, and connect+exec for qssh, OpenSSH with sntrup761x25519 and with curve25519 (--runs each, interleaved).")
    var startup = false
    @Flag(name: .long, help: "Only the in-process tunnel's bulk transfer with aes256-gcm 768-byte cells (for profiling).")
    var tunnelOnly = false
    @Option(name: .long, help: "Keepalive interval (s) of --idle-sessions, both ways.") var idleKeepalive: Int64 = 30
    @Flag(name: .long, help: "Only the wire-shape measurement: what qnsp serve/connect write in default, stealth and padding modes (entropy, chi-square, share of segment lengths on the 768 grid, first-packet rules, cover-traffic overhead).")
    var wireShape = false
    @Option(name: .long, help: "MiB echoed per mode with --wire-shape.") var wireShapeMib = 1
    @Option(name: .long, help: "ssh -N sessions against a stock sshd for the per-session memory comparison of --idle-sessions.")
    var sshdSessions = 100
    @Flag(name: .long, help: "Only the QUIC carrier beside TCP: connect+exec and bulk for qssh over QUIC, over TCP and OpenSSH ssh, a bare QUIC stream (no QNSP) as the stack's ceiling, QNSP over QUIC and over TCP in process (--runs, --quic-mib).")
    var quic = false
    @Option(name: .long, help: "MiB moved per transfer with --quic.") var quicMib = 64
    @Flag(name: .long, help: "With --quic: only the in-process part (bare QUIC, QNSP over QUIC and TCP), for profiling.")
    var quicInProcess = false
    @Argument(help: ArgumentHelp("Optional: 'quic' (the same as --quic).", valueName: "bench"))
    var only: String?

    public init() {}

    public func run() throws {
        #if DEBUG
        print("warning: this is a debug build; run 'swift run -c release qnsp-bench' for real figures\n")
        #endif
        if quic || only == "quic" { return try runQUIC() }
        if let only { throw ValidationError("unknown bench '\(only)' (known: quic)") }
        if copy { return try runCopy() }
        if wireShape { return try runWireShape() }
        if startup { return try runStartup() }
        if opaque { return try runOPAQUE() }
        if let idleSessions { return try runIdleSessions(idleSessions) }
        if let cellPath {
            let host = try HostKeyPair.generate()
            let user = try UserKeyPair.generate()
            for cell in [768, 16384] {
                let r = try CellPathBench.run(total: cellPath << 20, cellSize: cell, host: host, user: user)
                print(String(format: "cell path, %5d-byte cells, one thread: seal %6.0f MB/s, open %6.0f MB/s", cell, r.seal, r.open))
            }
            let raw = RawAEADBench.qnspCipher(.aes256GCM, chunk: 64 * 1024, seconds: seconds)
            let raw752 = RawAEADBench.qnspCipher(.aes256GCM, chunk: 752, seconds: seconds)
            print(String(format: "raw AEADCipher aes256-gcm seal: 64 KiB %6.0f MB/s, 752 B %6.0f MB/s", raw, raw752))
            return
        }
        let bench = try TunnelBench()
        defer { bench.shutdown() }
        if tunnelOnly {
            let t0 = try bench.threadCPU()
            let rate = try bench.bulk(total: mib << 20, cipher: .aes256GCM, cellSize: 768)
            let t1 = try bench.threadCPU()
            print("bulk aes256-gcm, 768-byte cells (\(mib) MiB): \(mbps(rate))   \(TunnelBench.cpuPerGiB(t0, t1, bytes: mib << 20))")
            let plain = try bench.bulkPlainTCP(total: mib << 20)
            let t2 = try bench.threadCPU()
            print("plain TCP, same threads, no QNSP (\(mib) MiB): \(mbps(plain))   \(TunnelBench.cpuPerGiB(t1, t2, bytes: mib << 20))")
            return
        }
        var rows: [(String, String)] = []
        func row(_ name: String, _ value: String) { rows.append((name, value)); print("  " + name.padding(toLength: 58, withPad: " ", startingAt: 0) + " " + value); fflush(nil) }

        print("qnsp-bench (AEAD fast path: \(AEADCipher.usesFastPath ? "BoringSSL EVP_AEAD context reuse" : "portable swift-crypto"))\n")
        print("Raw AEAD, one core:")
        let rawBig = RawAEADBench.swiftCryptoAESGCM(chunk: 64 * 1024, seconds: seconds)
        row("swift-crypto AES.GCM.seal, 64 KiB messages", mbps(rawBig))
        row("swift-crypto AES.GCM.seal, 752-byte messages", mbps(RawAEADBench.swiftCryptoAESGCM(chunk: 752, seconds: seconds)))
        row("QNSP AEADCipher aes256-gcm, 752-byte cells", mbps(RawAEADBench.qnspCipher(.aes256GCM, chunk: 752, seconds: seconds)))
        row("QNSP AEADCipher chacha20-poly1305, 752-byte cells", mbps(RawAEADBench.qnspCipher(.chaCha20Poly1305, chunk: 752, seconds: seconds)))

        print("\nQNSP in process over loopback TCP (client and server one thread each):")
        _ = try bench.handshakes(count: 10, cipher: .aes256GCM)  // warm up
        let lat = try bench.handshakes(count: handshakes, cipher: .aes256GCM)
        let (median, p90) = ProcessRunner.percentiles(lat)
        row("handshake latency median / p90 (\(handshakes) sequential)", String(format: "%.2f ms / %.2f ms", median * 1e3, p90 * 1e3))
        row("handshakes per second (sequential)", String(format: "%.0f /s", Double(lat.count) / lat.reduce(0, +)))
        let bytes = mib << 20
        let cells = try CellPathBench.run(total: bytes, cellSize: 768, host: bench.host, user: bench.user)
        row(
            "cell path alone, one thread, no sockets: seal / open",
            String(format: "%.0f / %.0f MB/s  (%.0f%% / %.0f%% of raw 64 KiB AES-GCM)", cells.seal, cells.open, cells.seal / rawBig * 100, cells.open / rawBig * 100)
        )
        let t0 = try bench.threadCPU()
        let tunnelAES = try bench.bulk(total: bytes, cipher: .aes256GCM, cellSize: 768)
        let t1 = try bench.threadCPU()
        row("bulk aes256-gcm, 768-byte cells (\(mib) MiB)", mbps(tunnelAES) + String(format: "  (%.0f%% of raw 64 KiB AES-GCM)", tunnelAES / rawBig * 100))
        row("  its CPU", TunnelBench.cpuPerGiB(t0, t1, bytes: bytes))
        let plainTCP = try bench.bulkPlainTCP(total: bytes)
        let t2 = try bench.threadCPU()
        row("plain TCP, same threads and handlers, no QNSP", mbps(plainTCP) + String(format: "  (the carrier's ceiling; QNSP at %.0f%% of it)", tunnelAES / plainTCP * 100))
        row("  its CPU", TunnelBench.cpuPerGiB(t1, t2, bytes: bytes))
        let tunnelChaCha = try bench.bulk(total: bytes, cipher: .chaCha20Poly1305, cellSize: 768)
        row("bulk chacha20-poly1305, 768-byte cells", mbps(tunnelChaCha))
        let tunnelBig = try bench.bulk(total: bytes, cipher: .aes256GCM, cellSize: 16384)
        row("bulk aes256-gcm, 16384-byte cells", mbps(tunnelBig) + String(format: "  (%.0f%% of raw)", tunnelBig / rawBig * 100))

        guard !noOpenssh else { return }
        let toolDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        guard FileManager.default.isExecutableFile(atPath: toolDir + "/qnsp") else {
            print("\n(process-level comparison skipped: build qnsp next to qnsp-bench, e.g. 'swift build -c release')")
            return
        }
        let pb = try ProcessBench(toolDir: toolDir)
        defer { pb.cleanup() }
        let pbytes = processMib << 20
        fflush(nil)
        print("\nProcess against process on 127.0.0.1 (\(runs) connects each; \(processMib) MiB piped from head -c):")
        let q = try pb.qnsp(bytes: pbytes, runs: runs, cipher: "aes256-gcm")
        let s = try pb.qssh(bytes: pbytes, runs: runs)
        if let (o, version) = try pb.openssh(bytes: pbytes, runs: runs, cipher: "aes256-gcm@openssh.com") {
            func line(_ a: String, _ b: String, _ c: String) {
                print("  " + a.padding(toLength: 44, withPad: " ", startingAt: 0) + " " + b.padding(toLength: 27, withPad: " ", startingAt: 0) + " " + c)
            }
            line("", "qssh (QNSP + SSH-2 inside)", version)
            line("connect+exec 'true' median", ms(s.connectMedian), ms(o.connectMedian))
            line("connect+exec 'true' p90", ms(s.connectP90), ms(o.connectP90))
            line("bulk into 'cat >/dev/null' (incl. connect)", mbps(s.bulkMBps), mbps(o.bulkMBps))
            line("server private memory per idle session", String(format: "%.0f kB", s.idleSessionKB), String(format: "%.0f kB", o.idleSessionKB))
            line("raw tunnel: qnsp connect+auth median", ms(q.connectMedian), "")
            line("raw tunnel: qnsp bulk to --discard", mbps(q.bulkMBps), "")
            print("  (both sides run the remote command through the login shell; ssh uses its default KEX,")
            print("   sntrup761x25519-sha512 on OpenSSH 9.x, and -c aes256-gcm@openssh.com; qssh uses aes256-gcm cells of 768 bytes)")
        } else {
            print("  qnsp connect median \(ms(q.connectMedian)), bulk \(mbps(q.bulkMBps)); OpenSSH not installed (apt-get install openssh-server openssh-client)")
        }
    }

    /// --idle-sessions N: N sessions held against one qsshd, memory per session against sshd's.
    func runIdleSessions(_ count: Int) throws {
        let toolDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qnsp-bench-idle-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        print("Idle sessions: \(count) logged-in sessions (QNSP + SSH-2, no channel, like qssh -N) against one qsshd")
        let r = try IdleSessionBench(toolDir: toolDir, dir: dir).run(
            sessions: count, holdSeconds: idleSeconds, keepalive: idleKeepalive, sshdSessions: sshdSessions) { print($0); fflush(nil) }
        func line(_ a: String, _ b: String) { print("  " + a.padding(toLength: 58, withPad: " ", startingAt: 0) + " " + b) }
        line("sessions established", "\(r.established) of \(r.sessions)")
        line(String(format: "alive after %.0f s (keepalive %d s)", r.holdSeconds, idleKeepalive), "\(r.aliveAfterHold) of \(r.established)")
        line("qsshd private memory per session", String(format: "%.1f kB", r.qsshdKBPerSession))
        if let s = r.sshdKBPerSession {
            line("sshd private memory per session (\(r.sshdSessions) ssh -N)", String(format: "%.1f kB", s))
            line("ratio sshd / qsshd", String(format: "%.1fx", s / max(0.1, r.qsshdKBPerSession)))
        }
        line("qssh HOST true while held: median / p90", String(format: "%.1f ms / %.1f ms", r.connectExecMedian * 1e3, r.connectExecP90 * 1e3))
    }

    /// The wire-shape table (see ``WireShapeBench``).
    func runWireShape() throws {
        let toolDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        guard FileManager.default.isExecutableFile(atPath: toolDir + "/qnsp") else {
            throw BenchError("build qnsp and qssh-keygen next to qnsp-bench first ('swift build -c release')")
        }
        let pb = try ProcessBench(toolDir: toolDir)
        defer { pb.cleanup() }
        let rows = try WireShapeBench(toolDir: toolDir, dir: pb.dir).run(mib: wireShapeMib)
        print("What qnsp serve --echo / qnsp connect put on loopback, \(wireShapeMib) MiB echoed per mode, captured by a relay;")
        print("chi-square of the first 64 KiB each way (uniform below \(ByteStatistics.chiSquareCritical255) at p = 0.001), entropy of both,")
        print("share of relay reads (≈ TCP segments) whose length is a multiple of 768, Wu et al.'s first-packet rules on the client's first segment,")
        print("wire bytes per application byte - 1 during the transfer, and wire bytes per second of an idle 2 s session (both ways):\n")
        for r in rows {
            print(r.mode)
            print(String(format: "  entropy %.4f bits/byte, chi2 c->s %.0f, s->c %.0f, on the 768 grid %.1f%%, overhead %+.1f%%, idle %.0f B/s",
                         r.entropy, r.chiC2S, r.chiS2C, r.onGrid * 100, r.overhead * 100, r.idleBytesPerSecond))
            print("  first packet: \(r.verdict)")
        }
    }

    /// qscp → qsshd against scp → sshd, same file, alternating rounds: once with the files on disk
    /// (the bench's directory) and once on a tmpfs (/dev/shm), where the disk cache hides nothing.
    func runCopy() throws {
        let toolDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        guard FileManager.default.isExecutableFile(atPath: toolDir + "/qscp") else {
            throw BenchError("build qscp, qsshd and qssh next to qnsp-bench first ('swift build -c release')")
        }
        let qscp = copyQscp.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? toolDir + "/qscp"
        guard FileManager.default.isExecutableFile(atPath: qscp) else { throw BenchError("no executable qscp at \(qscp)") }
        let pb = try ProcessBench(toolDir: toolDir)
        defer { pb.cleanup() }
        print("qscp measured: \(CopyBench.describeBuild(qscp))")
        var places = [("disk (\(pb.dir))", pb.dir + "/disk", pb.dir + "/disk")]
        var shm: String?
        var template = Array("/dev/shm/qnsp-bench-XXXXXX".utf8CString)
        if let made = mkdtemp(&template) {
            let path = String(cString: made)
            shm = path
            places.append(("tmpfs (\(path))", pb.dir + "/tmpfs", path))
        }
        defer { if let shm { try? FileManager.default.removeItem(atPath: shm) } }
        for (label, keyDir, dataDir) in places {
            try FileManager.default.createDirectory(atPath: keyDir, withIntermediateDirectories: true)
            print("File copy on 127.0.0.1, files on \(label): \(copyMib) MiB, \(copyRounds) rounds, qscp and scp alternating (upload; MB/s = 10^6 bytes/s, incl. connect)")
            fflush(nil)
            guard let r = try CopyBench(dir: keyDir, toolDir: toolDir, qscp: qscp, dataDir: dataDir).run(mib: copyMib, rounds: copyRounds) else {
                print("  OpenSSH not installed (apt-get install openssh-server openssh-client)")
                return
            }
            printCopy(r)
            try? FileManager.default.removeItem(atPath: dataDir)
        }
    }

    private func printCopy(_ r: CopyBench.Result) {
        let bytes = Double(copyMib << 20)
        let q = r.qscp.map { bytes / $0.seconds / 1e6 }, o = r.scp.map { bytes / $0.seconds / 1e6 }
        for i in 0..<r.qscp.count {
            print(String(format: "  round %d: qscp %6.0f MB/s   scp %6.0f MB/s", i + 1, q[i], o[i]))
        }
        let qm = ProcessRunner.percentiles(q).median, om = ProcessRunner.percentiles(o).median
        func line(_ a: String, _ b: String, _ c: String) {
            print("  " + a.padding(toLength: 44, withPad: " ", startingAt: 0) + " " + b.padding(toLength: 20, withPad: " ", startingAt: 0) + " " + c)
        }
        let qk = r.qscp.map(\.clientPeakKB).max() ?? 0, sk = r.scp.map(\.clientPeakKB).max() ?? 0
        line("", "qscp -> qsshd", "scp -> sshd (\(r.scpVersion))")
        line("median throughput", mbps(qm), mbps(om))
        line("ratio qscp / scp", String(format: "%.2fx", qm / om), "")
        line("peak client private memory (process tree)", "\(qk) kB", "\(sk) kB")
        line("ratio client memory qscp / scp", String(format: "%.2fx", Double(qk) / Double(max(1, sk))), "")
        let qd = r.qscp.map(\.clientPeakDirtyKB).max() ?? 0, sd = r.scp.map(\.clientPeakDirtyKB).max() ?? 0
        line("  of which dirty (heap, stacks, data)", "\(qd) kB", "\(sd) kB")
        line("  ratio dirty qscp / scp", String(format: "%.2fx", Double(qd) / Double(max(1, sd))), "")
        line("peak server private memory (per session)", "\(r.qscp.map(\.serverPeakKB).max() ?? 0) kB", "\(r.scp.map(\.serverPeakKB).max() ?? 0) kB")
        print("  (scp uses the SFTP protocol (OpenSSH 9 default), -c aes128-gcm@openssh.com, default KEX; qscp: one process, QNSP aes256-gcm 768-byte cells + inner SSH-2)")
    }

    /// --quic (or `qnsp-bench quic`): the QUIC carrier beside TCP and OpenSSH (see ``QUICBench``).
    func runQUIC() throws {
        let toolDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        guard FileManager.default.isExecutableFile(atPath: toolDir + "/qsshd") else {
            throw BenchError("build qssh, qsshd and qssh-keygen next to qnsp-bench first ('swift build -c release')")
        }
        let pb = try ProcessBench(toolDir: toolDir)
        defer { pb.cleanup() }
        print("QUIC carrier on 127.0.0.1 (\(runs) connects each, medians with p90 in brackets; \(quicMib) MiB per transfer, best of the rounds):")
        fflush(nil)
        let r = try QUICBench(dir: pb.dir, toolDir: toolDir).run(runs: runs, mib: quicMib, processes: !quicInProcess) { print($0); fflush(nil) }
        func cell(_ xs: [Double]) -> String {
            let (m, p) = ProcessRunner.percentiles(xs)
            return String(format: "%.1f ms (%.1f)", m * 1e3, p * 1e3)
        }
        func med(_ xs: [Double]) -> Double { max(1e-9, ProcessRunner.percentiles(xs).median) }
        func line(_ a: String, _ b: String, _ c: String, _ d: String, _ e: String) {
            print("  " + a.padding(toLength: 30, withPad: " ", startingAt: 0) + " " + b.padding(toLength: 20, withPad: " ", startingAt: 0) + " "
                + c.padding(toLength: 20, withPad: " ", startingAt: 0) + " " + d.padding(toLength: 20, withPad: " ", startingAt: 0) + " " + e)
        }
        print("")
        line("", "qssh over QUIC", "qssh over TCP", "ssh -> sshd", "ratios")
        let o = r.openssh
        line("connect+exec 'true'", cell(r.quic.connect), cell(r.tcp.connect), o.map { cell($0.connect) } ?? "-",
             String(format: "QUIC/TCP %.2fx", med(r.quic.connect) / med(r.tcp.connect))
                + (o.map { String(format: ", QUIC/ssh %.2fx", med(r.quic.connect) / med($0.connect)) } ?? ""))
        line("bulk 'cat >/dev/null'", mbps(r.quic.bulkMBps), mbps(r.tcp.bulkMBps), o.map { mbps($0.bulkMBps) } ?? "-",
             String(format: "QUIC/TCP %.2fx", r.quic.bulkMBps / max(1e-9, r.tcp.bulkMBps))
                + String(format: ", QUIC/bare %.0f%%", r.quic.bulkMBps / max(1e-9, r.bareMBps) * 100)
                + (o.map { String(format: ", QUIC/ssh %.2fx", r.quic.bulkMBps / max(1e-9, $0.bulkMBps)) } ?? ""))
        print("\n  In process (client and server one event loop thread each, no SSH-2):")
        line("", "QUIC", "TCP", "", "ratios")
        line("bare stream, no QNSP", mbps(r.bareMBps), "", "", "the QUIC stack's ceiling")
        line("bare QUIC handshake", cell(r.bareConnect), "", "", String(format: "qssh QUIC connect+exec / this %.1fx", med(r.quic.connect) / med(r.bareConnect)))
        line("QNSP aes256-gcm 768-byte cells", mbps(r.qnspQUICMBps), mbps(r.qnspTCPMBps), "",
             String(format: "QUIC/TCP %.2fx, QUIC/bare %.0f%%", r.qnspQUICMBps / max(1e-9, r.qnspTCPMBps), r.qnspQUICMBps / max(1e-9, r.bareMBps) * 100))
        if o != nil { print("  (ssh: \(r.sshVersion), default KEX, -c aes256-gcm@openssh.com; qssh: QNSP aes256-gcm 768-byte cells + SSH-2 inside)") }
        print("  (processes include spawn, handshakes and exit; MB/s = 10^6 bytes/s of application data, incl. connect)")
    }

    /// --startup: what the clients cost before and around their first byte, qssh beside OpenSSH.
    func runStartup() throws {
        let toolDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        guard FileManager.default.isExecutableFile(atPath: toolDir + "/qssh") else {
            throw BenchError("build qssh and qsshd next to qnsp-bench first ('swift build -c release')")
        }
        let pb = try ProcessBench(toolDir: toolDir)
        defer { pb.cleanup() }
        print("Client start-up on 127.0.0.1, \(runs) runs of each, interleaved (medians, p90 in brackets):")
        fflush(nil)
        guard let r = try StartupBench(dir: pb.dir, toolDir: toolDir).run(runs: runs) else {
            print("  OpenSSH not installed (apt-get install openssh-server openssh-client)")
            return
        }
        func cell(_ xs: [Double]) -> String {
            let (m, p) = ProcessRunner.percentiles(xs)
            return String(format: "%.1f ms (%.1f)", m * 1e3, p * 1e3)
        }
        func ratio(_ a: [Double], _ b: [Double]) -> String {
            String(format: "%.2fx", ProcessRunner.percentiles(a).median / max(1e-9, ProcessRunner.percentiles(b).median))
        }
        func line(_ a: String, _ b: String, _ c: String, _ d: String) {
            print("  " + a.padding(toLength: 40, withPad: " ", startingAt: 0) + " " + b.padding(toLength: 18, withPad: " ", startingAt: 0) + " "
                + c.padding(toLength: 18, withPad: " ", startingAt: 0) + " " + d)
        }
        print("  qssh: \(r.qsshRuntime) (a release build with --static-swift-stdlib links it in); ssh: \(r.sshVersion)")
        line("", "qssh", "ssh", "qssh / ssh")
        line("bare start (qssh --help, ssh -V)", cell(r.bareQssh), cell(r.bareSSH), ratio(r.bareQssh, r.bareSSH))
        line("spawn to first byte on the wire", cell(r.firstByteQssh), cell(r.firstByteSSH), ratio(r.firstByteQssh, r.firstByteSSH))
        line("connect+exec 'true', sntrup761x25519", cell(r.execQssh), cell(r.execSntrup), ratio(r.execQssh, r.execSntrup))
        line("connect+exec 'true', curve25519", "", cell(r.execCurve), ratio(r.execQssh, r.execCurve))
        print("  (qssh: X-Wing + ML-DSA-65 QNSP handshake, then SSH-2 inside; ssh: ed25519 keys, BatchMode; no shell wrapper)")
    }

    /// OPAQUE registration and login with qpq's parameters, then with opaque-ke's default Argon2id for comparison.
    func runOPAQUE() throws {
        try OPAQUEBench.argon2idSweep(runs: max(5, opaqueRuns / 2))
        print("")
        try OPAQUEBench.run(
            runs: opaqueRuns, configuration: .qpqDefault, label: "qpq default \(Argon2idParameters.qpqDefault)")
        print("")
        try OPAQUEBench.run(
            runs: opaqueRuns, configuration: .opaqueKeDefault,
            label: "opaque-ke default \(Argon2idParameters.opaqueKeDefault)")
        print("")
        try OPAQUEBench.knownVersusUnknown(runs: 2000)
    }

    func mbps(_ x: Double) -> String { String(format: "%.0f MB/s", x) }
    func ms(_ x: Double) -> String { String(format: "%.1f ms", x * 1e3) }
}
