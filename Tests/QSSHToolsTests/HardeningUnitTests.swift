import Foundation
import Logging
import NIOCore
import QNSP
import QNSPCrypto
@testable import QSFTP
@testable import QSSHSession
@testable import QSSHTools
import Testing

@Suite("Hardening: admission, file checks, packet repair, refusal timing, audit log, log escaping")
struct HardeningUnitTests {
    // MARK: Admission

    @Test("MaxStartups start:rate:full parses like sshd's and refuses with the right probability")
    func startupLimits() throws {
        let limits = try #require(StartupLimits(parsing: "10:30:100"))
        #expect(limits == StartupLimits(start: 10, rate: 30, full: 100))
        #expect(StartupLimits(parsing: "5") == StartupLimits(start: 5))
        for bad in ["", "0", "10:101:100", "10:30:5", "a:b:c", "10:30"] { #expect(StartupLimits(parsing: bad) == nil, "\(bad)") }
        #expect(!limits.refuses(current: 9, roll: 0))
        #expect(limits.refuses(current: 10, roll: 29))
        #expect(!limits.refuses(current: 10, roll: 30))
        #expect(limits.refuses(current: 55, roll: 64))  // 30 + 70 * 45 / 90 = 65 %
        #expect(!limits.refuses(current: 55, roll: 65))
        #expect(limits.refuses(current: 100, roll: 99))
    }

    @Test("admission: per-source cap, sessions apart from startups, silent connections make room")
    func admission() {
        let roll = NIOLockedValueBoxInt(99)
        let admission = ConnectionAdmission(
            limits: .init(maxSessions: 2, startups: StartupLimits(start: 3, rate: 100, full: 3), perSource: 2), roll: { roll.value })
        let t0 = NIODeadline.now()
        func admit(_ source: UInt8, at seconds: Int64 = 0) -> ConnectionAdmission.Ticket? {
            if case .admit(let t, _) = admission.admit(source: [10, 0, 0, source], channel: nil, now: t0 + .seconds(seconds)) { return t }
            return nil
        }
        let a = admit(1)
        let b = admit(1)
        #expect(a != nil && b != nil)
        #expect(admit(1) == nil)  // per source
        let c = admit(2)
        #expect(c != nil)
        // Startups full (3): nothing silent for a second yet, so refused.
        #expect(admit(3) == nil)
        // A logs in: it becomes a session and frees its startup slot, which D takes.
        #expect(admission.authenticated(a!))
        #expect(admission.sessions == 1)
        #expect(admission.unauthenticated == 2)
        #expect(admit(4) != nil)
        // B has spoken, C has not: two seconds later, C (silent) is closed to make room for E.
        admission.heard(b!)
        guard case .admit(_, let evicted) = admission.admit(source: [10, 0, 0, 5], channel: nil, now: t0 + .seconds(2)) else {
            Issue.record("not admitted")
            return
        }
        #expect(evicted != nil)
        #expect(admission.unauthenticated == 3)
        // Sessions have their own limit.
        #expect(admission.authenticated(b!))
        #expect(admission.sessions == 2)
        if case .refuse(let reason, _) = admission.admit(source: [10, 0, 0, 6], channel: nil) {
            #expect(reason.contains("2 sessions already open"))
        } else {
            Issue.record("admitted beyond the session limit")
        }
        admission.closed(a!)
        #expect(admission.sessions == 1)
    }

    // MARK: Files

    @Test("keys files: only regular files, never a FIFO (no blocking), a symlink or a directory; StrictModes up to /")
    func safeFiles() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        try "key\n".write(toFile: dir + "/keys", atomically: true, encoding: .utf8)
        chmod(dir + "/keys", 0o644)
        #expect(try SafeFile.read(path: dir + "/keys", owner: getuid()) == Array("key\n".utf8))
        #expect(mkfifo(dir + "/fifo", 0o600) == 0)
        let started = Date()
        #expect(throws: SafeFile.Failure(description: "\(dir)/fifo is not a regular file")) { try SafeFile.read(path: dir + "/fifo") }
        #expect(Date().timeIntervalSince(started) < 2)
        #expect(symlink(dir + "/keys", dir + "/link") == 0)
        #expect(throws: SafeFile.Failure(description: "\(dir)/link is a symbolic link")) { try SafeFile.read(path: dir + "/link") }
        #expect(throws: SafeFile.Failure.self) { try SafeFile.read(path: dir) }
        chmod(dir + "/keys", 0o666)
        #expect(throws: SafeFile.Failure(description: "\(dir)/keys is writable by group or others")) { try SafeFile.read(path: dir + "/keys") }
        chmod(dir + "/keys", 0o644)
        // StrictModes: each directory up to / (a sticky root-owned /tmp is fine).
        try FileManager.default.createDirectory(atPath: dir + "/a/b", withIntermediateDirectories: true)
        try "k".write(toFile: dir + "/a/b/keys", atomically: true, encoding: .utf8)
        for p in ["/a", "/a/b"] { chmod(dir + p, 0o755) }
        chmod(dir + "/a/b/keys", 0o644)
        #expect(StrictModes.problem(path: dir + "/a/b/keys", uid: getuid()) == nil)
        chmod(dir + "/a", 0o777)
        #expect(StrictModes.problem(path: dir + "/a/b/keys", uid: getuid()) == "\(dir)/a is writable by group or others")
        chmod(dir + "/a", 0o1777)  // sticky, but not owned by root when we are not root
        #expect((StrictModes.problem(path: dir + "/a/b/keys", uid: getuid()) == nil) == (getuid() == 0))
        chmod(dir + "/a", 0o755)
        chmod(dir + "/a/b/keys", 0o664)
        #expect(StrictModes.problem(path: dir + "/a/b/keys", uid: getuid()) == "\(dir)/a/b/keys is writable by group or others")
        #expect(StrictModes.problem(path: dir + "/a/b/keys", uid: 4242) == (getuid() == 0 ? "\(dir)/a/b/keys is writable by group or others"
                                                                                           : "\(dir)/a/b/keys belongs to uid \(getuid())"))
    }

    // MARK: SSH packet repair

    static func channelOpen(type: String, host: String = "127.0.0.1", port: UInt32 = 80, originator: String, originatorPort: UInt32 = 1) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: 128)
        func string(_ s: String) {
            b.writeInteger(UInt32(s.utf8.count))
            b.writeString(s)
        }
        b.writeInteger(UInt8(90))
        string(type)
        b.writeInteger(UInt32(7))
        b.writeInteger(UInt32(65536))
        b.writeInteger(UInt32(32768))
        string(host)
        b.writeInteger(port)
        string(originator)
        b.writeInteger(originatorPort)
        return b
    }

    @Test("channel opens that would kill swift-nio-ssh's connection are repaired or turned into a refusable channel")
    func inboundRepair() {
        let good = Self.channelOpen(type: "direct-tcpip", originator: "127.0.0.1")
        #expect(SSHInboundRepair.repair(good) == good)
        let empty = SSHInboundRepair.repair(Self.channelOpen(type: "direct-tcpip", originator: ""))
        #expect(empty == Self.channelOpen(type: "direct-tcpip", originator: "0.0.0.0"))
        let name = SSHInboundRepair.repair(Self.channelOpen(type: "forwarded-tcpip", originator: "client.example", originatorPort: 70000))
        #expect(name == Self.channelOpen(type: "forwarded-tcpip", originator: "0.0.0.0", originatorPort: 0))
        #expect(SSHInboundRepair.repair(Self.channelOpen(type: "direct-tcpip", originator: "::1")) == Self.channelOpen(type: "direct-tcpip", originator: "::1"))
        let refused = Self.channelOpen(type: "forwarded-tcpip", host: "refused", port: 0, originator: "0.0.0.0", originatorPort: 0)
        #expect(SSHInboundRepair.repair(Self.channelOpen(type: "direct-tcpip", port: 70000, originator: "")) == refused)
        #expect(SSHInboundRepair.repair(Self.channelOpen(type: "x11", originator: "1.2.3.4")) == refused)
        var other = ByteBufferAllocator().buffer(capacity: 8)
        other.writeBytes([94, 0, 0, 0, 1])
        #expect(SSHInboundRepair.repair(other) == other)
        // Random and mutated packets never trap, and the result is either the input or a well-formed open.
        var rng = SystemRandomNumberGenerator()
        for i in 0..<20_000 {
            var bytes = Array(Self.channelOpen(type: i % 2 == 0 ? "direct-tcpip" : "session", originator: "").readableBytesView)
            let n = Int.random(in: 0..<bytes.count, using: &rng)
            bytes = Array(bytes.prefix(Int.random(in: n..<bytes.count + 1, using: &rng)))
            if !bytes.isEmpty { bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            var b = ByteBufferAllocator().buffer(capacity: bytes.count)
            b.writeBytes(bytes)
            _ = SSHInboundRepair.repair(b)
        }
    }

    @Test("SFTP symlink argument order follows the client: asyncssh sends the link first, OpenSSH and paramiko the target")
    func symlinkOrder() {
        #expect(SFTPServer.SymlinkArgumentOrder.of(clientVersion: "SSH-2.0-AsyncSSH_2.24.1") == .linkFirst)
        #expect(SFTPServer.SymlinkArgumentOrder.of(clientVersion: "SSH-2.0-paramiko_5.1.0") == .targetFirst)
        #expect(SFTPServer.SymlinkArgumentOrder.of(clientVersion: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3") == .targetFirst)
        #expect(SFTPServer.SymlinkArgumentOrder.of(clientVersion: nil) == .targetFirst)
    }

    // MARK: Refusal timing

    @Test("refusals are answered at a per-name time that does not depend on how fast the policy was")
    func refusalDelay() {
        let delay = RefusalDelay()
        let a = delay.answerTime(user: "alice", elapsed: .milliseconds(1))
        #expect(a == delay.answerTime(user: "alice", elapsed: .milliseconds(40)))  // fast or slow lookup: same answer time
        #expect(a >= .milliseconds(100) && a < .milliseconds(150))
        #expect(delay.answerTime(user: "alice", elapsed: a + .milliseconds(1)) == a * 2)  // a slow policy: the next step
        let names = Set((0..<20).map { delay.answerTime(user: "user\($0)", elapsed: .zero) })
        #expect(names.count > 10)  // the offset differs by name
    }

    // MARK: Log escaping

    @Test("log lines escape control characters in the message and the fields")
    func logEscaping() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sink = try LineLogHandler.Sink.file(dir + "/log")
        var logger = Logger(label: "qsshd") { LineLogHandler(label: $0, sink: sink, level: .info) }
        logger.logLevel = .info
        logger.info("refused x\n2026-01-01T00:00:00Z qsshd[1]: INFO accepted root", metadata: ["user": "a\u{1b}[31mb"])
        let text = try String(contentsOfFile: dir + "/log", encoding: .utf8)
        #expect(text.split(separator: "\n").count == 1)
        #expect(text.contains("refused x\\n2026-01-01T00:00:00Z"))
        #expect(text.contains("user=a\\x1b[31mb"))
    }

    // MARK: Audit log

    static let signer: HostKeyPair = {
        do { return try HostKeyPair.generate(comment: "audit test") } catch { preconditionFailure("key generation: \(error)") }
    }()

    func auditLog(_ dir: String, records: Int, options: AuditLog.Options = AuditLog.Options()) throws -> [String] {
        let log = try AuditLog(path: dir + "/audit", signer: Self.signer, options: options)
        for i in 0..<records { log.record("exec", peer: "127.0.0.1", user: "alice", detail: "command \(i)") }
        log.flush(checkpoint: true)
        return try String(contentsOfFile: dir + "/audit", encoding: .utf8).split(separator: "\n").map(String.init)
    }

    func write(_ lines: [String], _ path: String) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test("audit log: intact logs verify; rewritten (also with a recomputed unkeyed chain), truncated and reordered ones do not")
    func auditTampering() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/audit"
        var options = AuditLog.Options()
        options.checkpointEvery = 4
        let lines = try auditLog(dir, records: 10, options: options)
        let ok = AuditLog.verify(path: path, hostKey: Self.signer.publicKey)
        #expect(ok.isIntact, "\(ok.problems)")
        #expect(ok.segments.count == 1)
        #expect(ok.segments.first?.checkpoints ?? 0 >= 3)
        #expect(try mode(path + ".key") == 0o600)

        // The old attack: change a record and recompute every link with unkeyed SHA-256.
        var rewritten: [String] = []
        var previous = ""
        for line in lines {
            var record = try JSONDecoder().decode(AuditLog.Record.self, from: Data(line.utf8))
            record.detail = record.detail?.replacingOccurrences(of: "command 3", with: "nothing happened")
            record.chain = nil
            let body = try AuditLog.encoder.encode(record)
            record.chain = KeyDerivation.sha256(Array(previous.utf8) + Array(body)).map { String(format: "%02x", $0) }.joined()
            previous = record.chain ?? ""
            rewritten.append(String(decoding: try AuditLog.encoder.encode(record), as: UTF8.self))
        }
        try write(rewritten, path)
        #expect(AuditLog.verify(path: path, hostKey: Self.signer.publicKey).problems.first?.contains("line 1 does not match the hash chain") == true)

        // Truncated: the last three records cut off.
        try write(Array(lines.dropLast(3)), path)
        let truncated = AuditLog.verify(path: path, hostKey: Self.signer.publicKey)
        #expect(truncated.problems.contains { $0.contains("the log was cut off") }, "\(truncated.problems)")

        // Reordered: two records swapped.
        var swapped = lines
        swapped.swapAt(3, 4)
        try write(swapped, path)
        #expect(AuditLog.verify(path: path, hostKey: Self.signer.publicKey).problems.first?.contains("line 4 has sequence") == true)

        // Without the key a verifier still checks the signed checkpoints: a forged signature is found.
        try write(lines, path)
        try FileManager.default.moveItem(atPath: path + ".key", toPath: dir + "/elsewhere.key")
        let keyless = AuditLog.verify(path: path, hostKey: Self.signer.publicKey)
        #expect(keyless.isIntact && keyless.notes.contains { $0.contains("links not checked") }, "\(keyless)")
        let forged = lines.map { line -> String in
            guard line.contains("\"event\":\"checkpoint\"") else { return line }
            return line.replacingOccurrences(of: "\"sig\":\"", with: "\"sig\":\"AAAA")
        }
        try write(forged, path)
        #expect(AuditLog.verify(path: path, hostKey: Self.signer.publicKey).problems.contains { $0.contains("checkpoint signature does not verify") })
        // Another host's key does not verify the real checkpoints either.
        try write(lines, path)
        let otherHost = try HostKeyPair.generate()
        #expect(!AuditLog.verify(path: path, hostKey: otherHost.publicKey).isIntact)
    }

    @Test("audit log: a malformed old line never stops the server; a new segment starts and the old damage stays visible")
    func auditNewSegment() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/audit"
        var lines = try auditLog(dir, records: 3)
        lines.insert("this is not json", at: 2)
        try write(lines, path)
        let reopened = try AuditLog(path: path, signer: Self.signer)
        #expect(reopened.startupProblem?.contains("line 3 is not an audit record") == true)
        reopened.record("exec", user: "bob", detail: "after the damage")
        reopened.flush(checkpoint: true)
        let report = AuditLog.verify(path: path, hostKey: Self.signer.publicKey)
        #expect(report.segments.count == 2)
        #expect(report.segments.first?.intact == false)
        #expect(report.segments.last?.intact == true)
        #expect(report.problems == ["line 3 is not an audit record"], "\(report.problems)")
    }

    @Test("audit log: rotation by size keeps the chain across files; a key file others can read is refused")
    func auditRotation() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = AuditLog.Options()
        options.maxSize = 2000
        _ = try auditLog(dir, records: 40, options: options)
        #expect(FileManager.default.fileExists(atPath: dir + "/audit.1"))
        let current = AuditLog.verify(path: dir + "/audit", hostKey: Self.signer.publicKey)
        #expect(current.isIntact, "\(current.problems)")
        // The rotated file verifies on its own (its head is the next file's first link, so there is no head file for it).
        let rotated = AuditLog.verify(path: dir + "/audit.1", keyPath: dir + "/audit.key", headPath: dir + "/nonexistent", hostKey: Self.signer.publicKey)
        #expect(rotated.segments.first?.intact == true)
        chmod(dir + "/audit.key", 0o644)
        #expect(throws: AuditLog.AuditError.self) { _ = try AuditLog(path: dir + "/audit", signer: Self.signer) }
    }

    @Test("audit log: events before authentication are rate limited and summarized")
    func auditRateLimit() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = AuditLog.Options()
        options.unauthenticatedBurst = 10
        options.unauthenticatedPerSecond = 0.001
        let log = try AuditLog(path: dir + "/audit", signer: Self.signer, options: options)
        for _ in 0..<500 { log.recordUnauthenticated("connect", peer: "127.0.0.2") }
        log.flush()
        let lines = try String(contentsOfFile: dir + "/audit", encoding: .utf8).split(separator: "\n")
        #expect(lines.filter { $0.contains("\"event\":\"connect\"") }.count == 10)
        #expect(AuditLog.verify(path: dir + "/audit", hostKey: Self.signer.publicKey).isIntact)
    }
}

/// A mutable Int for closures in tests.
final class NIOLockedValueBoxInt: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Int
    init(_ v: Int) { stored = v }
    var value: Int {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}
