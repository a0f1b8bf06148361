import Crypto
import Dispatch
import Foundation
import QNSPCrypto

/// qsshd's tamper-evident audit log: one JSON object per line.
///
/// - **Keyed chain.** Each record carries `chain` = hex(HMAC-SHA-256(key, previous chain || the
///   record's canonical JSON without `chain` and `sig`)). The key lives in a file only the
///   server's account can read (``AuditKey``), so whoever can edit the log but not read the key
///   cannot recompute the chain after deleting, editing, inserting or reordering lines.
/// - **Signed checkpoints.** Every `checkpointEvery` records (and when the log is rotated or
///   closed) a `checkpoint` record carries an ML-DSA-65 signature by the host key over the
///   segment, sequence number and chain value, which `verify` checks with the host's public key
///   alone.
/// - **The last link elsewhere.** After every record the segment, sequence number and chain are
///   written (atomically) to a head file, by default `LOG.head`, ideally on other storage; a log
///   whose end was cut off no longer matches it.
/// - **Segments.** A log that cannot be continued (a malformed or edited line, a missing head) is
///   reported and a new segment is started in the same file: the server never refuses to start
///   because of old damage, and `verify` shows exactly which segment is broken.
/// - **Rotation** by size: the file becomes `LOG.1` (older ones move up, `keep` are kept) and the
///   chain continues in a new file whose first record names the previous link.
/// - **Rate limit** for events before authentication (connects, refusals), so that a flood
///   cannot fill the disk: excess events are counted and summarized in one `suppressed` record.
///
/// Records are written on a serial queue of their own: an event loop never waits for the disk.
public final class AuditLog: @unchecked Sendable {
    /// One audited event.
    public struct Record: Codable, Equatable, Sendable {
        public var seq: Int
        public var time: String
        public var event: String
        public var segment: String
        public var peer: String?
        public var user: String?
        public var key: String?
        public var detail: String?
        /// segment-start: the chain value this segment continues from ("" for a fresh chain).
        public var prev: String?
        public var chain: String?
        /// checkpoint: base64 ML-DSA-65 signature.
        public var sig: String?
    }

    /// Errors reading, opening or verifying a log.
    public enum AuditError: Error, Equatable, CustomStringConvertible {
        case unreadable(String)
        case malformedLine(Int)
        case brokenChain(line: Int)
        case sequenceGap(line: Int, expected: Int, found: Int)
        case badCheckpoint(line: Int)
        case truncated(String)
        case keyFile(String)

        public var description: String {
            switch self {
            case .unreadable(let why): return "cannot read the audit log: \(why)"
            case .malformedLine(let n): return "line \(n) is not an audit record"
            case .brokenChain(let n):
                return
                    "line \(n) does not match the hash chain: it or an earlier line was edited, inserted, removed or moved"
            case .sequenceGap(let n, let e, let f):
                return "line \(n) has sequence \(f), expected \(e): a line was removed or moved"
            case .badCheckpoint(let n): return "line \(n): the checkpoint signature does not verify with the host key"
            case .truncated(let why): return "the log was cut off: \(why)"
            case .keyFile(let why): return why
            }
        }
    }

    /// Settings of a log.
    public struct Options: Sendable {
        /// The HMAC key file (default: the log's path + ".key").
        public var keyPath: String?
        /// Where the last link is kept (default: the log's path + ".head").
        public var headPath: String?
        /// Rotate when the file grows beyond this many bytes (0: never).
        public var maxSize: Int = 16 << 20
        /// Rotated files kept (LOG.1 … LOG.keep).
        public var keep: Int = 5
        public var checkpointEvery: Int = 64
        /// Events before authentication: burst and events per second.
        public var unauthenticatedBurst: Double = 100
        public var unauthenticatedPerSecond: Double = 20
        public init() {}
    }

    public let path: String
    let options: Options
    private let key: SymmetricKey
    private let signer: HostKeyPair?
    private let queue = DispatchQueue(label: "qsshd.audit")
    private var handle: FileHandle
    private var size: Int
    private var last: String
    private var seq: Int
    private var segment: String
    private var sinceCheckpoint = 0
    private var tokens: Double
    private var tokensAt = Date()
    private var suppressed = 0
    /// What opening the log found wrong with the old records (already recorded in a new segment).
    public private(set) var startupProblem: String?

    /// Opens (or creates, 0600) the log and continues its chain; starts a new segment when the
    /// old one cannot be verified (``startupProblem`` says why). Throws only when the key file is
    /// unusable or the log cannot be opened for writing.
    public init(path: String, signer: HostKeyPair?, options: Options = Options()) throws {
        self.path = path
        self.options = options
        self.signer = signer
        key = try AuditKey.loadOrCreate(path: options.keyPath ?? path + ".key")
        tokens = options.unauthenticatedBurst
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
            else {
                throw AuditError.unreadable("cannot create \(path)")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw AuditError.unreadable("cannot open \(path) for appending")
        }
        handle = h
        size = Int(handle.seekToEndOfFile())
        let head = options.headPath ?? path + ".head"
        let report = Self.verifyFile(
            path: path,
            key: key,
            hostKey: signer?.publicKey,
            headPath: head,
            requireHead: size > 0
        )
        segment = Self.newSegmentID()
        seq = 0
        last = ""
        var reason = "new log"
        if let tail = report.segments.last, report.problems.isEmpty, size > 0 {
            // Continue the intact chain.
            segment = tail.segment
            seq = tail.lastSeq
            last = tail.lastChain
            return
        }
        if !report.problems.isEmpty {
            startupProblem = report.problems.joined(separator: "; ")
            let lastGood =
                report.segments.last.map {
                    " (last verified: segment \($0.segment) record \($0.lastSeq) link \($0.lastChain))"
                } ?? ""
            reason = "previous records unverifiable: \(startupProblem ?? "")\(lastGood)"
        }
        if size > 0, let end = try? String(contentsOfFile: path, encoding: .utf8), !end.hasSuffix("\n") {
            write(Data("\n".utf8))  // a cut-off last line must not swallow the next record
        }
        append(event: "segment-start", detail: reason, prev: "")
    }

    /// Appends one event (after authentication, or a server event): never rate limited.
    public func record(
        _ event: String,
        peer: String? = nil,
        user: String? = nil,
        key: String? = nil,
        detail: String? = nil
    ) {
        queue.async { self.append(event: event, peer: peer, user: user, key: key, detail: detail) }
    }

    /// Appends an event that anyone can cause without logging in, within the rate limit.
    public func recordUnauthenticated(_ event: String, peer: String? = nil, user: String? = nil, detail: String? = nil)
    {
        queue.async {
            let now = Date()
            self.tokens = min(
                self.options.unauthenticatedBurst,
                self.tokens + now.timeIntervalSince(self.tokensAt) * self.options.unauthenticatedPerSecond
            )
            self.tokensAt = now
            guard self.tokens >= 1 else {
                self.suppressed += 1
                return
            }
            self.tokens -= 1
            if self.suppressed > 0 {
                self.append(
                    event: "suppressed",
                    detail: "\(self.suppressed) unauthenticated events not recorded (rate limit)"
                )
                self.suppressed = 0
            }
            self.append(event: event, peer: peer, user: user, detail: detail)
        }
    }

    /// Waits until every record so far is written (and signs a checkpoint when `checkpoint`).
    public func flush(checkpoint: Bool = false) {
        queue.sync {
            if checkpoint && sinceCheckpoint > 0 { appendCheckpoint() }
        }
    }

    // MARK: Writing (on `queue`, or from init)

    private func append(
        event: String,
        peer: String? = nil,
        user: String? = nil,
        key: String? = nil,
        detail: String? = nil,
        prev: String? = nil,
        sig: String? = nil
    ) {
        // Rotate before an ordinary record (the checkpoint and segment start that rotating writes never do).
        if options.maxSize > 0 && size >= options.maxSize && event != "segment-start" && event != "checkpoint" {
            rotate()
        }
        seq += 1
        var r = Record(
            seq: seq,
            time: Self.timestamp(),
            event: event,
            segment: segment,
            peer: peer,
            user: user,
            key: key,
            detail: detail,
            prev: prev
        )
        r.sig = sig
        let chain = Self.link(key: self.key, previous: last, record: r)
        r.chain = chain
        guard let data = try? Self.encoder.encode(r) else { return }
        last = chain
        write(data + Data("\n".utf8))
        writeHead()
        if event == "checkpoint" {
            sinceCheckpoint = 0
        } else {
            sinceCheckpoint += 1
            if sinceCheckpoint >= options.checkpointEvery { appendCheckpoint() }
        }
    }

    private func appendCheckpoint() {
        guard let signer else { return }
        let message = Self.checkpointMessage(segment: segment, seq: seq, chain: last)
        guard let signature = try? signer.signingKey.sign(message, context: Self.checkpointContext) else { return }
        append(event: "checkpoint", detail: "signed link \(seq)", sig: Data(signature).base64EncodedString())
    }

    private func write(_ data: Data) {
        handle.write(data)
        size += data.count
    }

    private func writeHead() {
        let head = options.headPath ?? path + ".head"
        let text = "\(segment) \(seq) \(last)\n"
        let temp = head + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        _ = Array(text.utf8).withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        rename(temp, head)
    }

    /// LOG → LOG.1 (older files move up); the chain continues in a new file.
    private func rotate() {
        appendCheckpoint()
        handle.closeFile()
        let keep = max(1, options.keep)
        unlink("\(path).\(keep)")
        for i in stride(from: keep - 1, through: 1, by: -1) { rename("\(path).\(i)", "\(path).\(i + 1)") }
        rename(path, path + ".1")
        _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        if let h = FileHandle(forWritingAtPath: path) { handle = h }
        size = 0
        append(event: "segment-start", detail: "continued from \(path).1", prev: last)
    }

    // MARK: Format

    static let checkpointContext = Array("qsshd audit checkpoint".utf8)

    static func checkpointMessage(segment: String, seq: Int, chain: String) -> [UInt8] {
        Array("qsshd audit checkpoint \(segment) \(seq) \(chain)".utf8)
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static func timestamp() -> String { ISO8601DateFormatter().string(from: Date()) }

    static func newSegmentID() -> String {
        ((try? SecureRandom().bytes(8)) ?? Array(UUID().uuidString.utf8.prefix(8))).map { String(format: "%02x", $0) }
            .joined()
    }

    /// chain = hex(HMAC-SHA-256(key, previous || JSON of the record without chain and sig)).
    static func link(key: SymmetricKey, previous: String, record: Record) -> String {
        var body = record
        body.chain = nil
        body.sig = nil
        let json = (try? encoder.encode(body)) ?? Data()
        var mac = HMAC<SHA256>(key: key)
        mac.update(data: Data(previous.utf8))
        mac.update(data: json)
        return mac.finalize().map { String(format: "%02x", $0) }.joined()
    }

    // MARK: Verifying

    /// What `verify` found in one segment.
    public struct SegmentReport: Sendable, Equatable {
        public var segment: String
        public var firstLine: Int
        public var records: Int
        public var checkpoints: Int
        public var lastSeq: Int
        public var lastChain: String
        public var intact: Bool
    }

    /// What `verify` found in a log file.
    public struct Report: Sendable, Equatable {
        public var segments: [SegmentReport] = []
        /// Every problem, each naming the line.
        public var problems: [String] = []
        public var notes: [String] = []
        public var isIntact: Bool { problems.isEmpty }
    }

    /// Verifies a log: with the key (links), the host public key (checkpoint signatures) and the
    /// head file (the end was not cut off). Missing pieces are named in `notes`.
    public static func verify(
        path: String,
        keyPath: String? = nil,
        headPath: String? = nil,
        hostKey: HostPublicKey?
    ) -> Report {
        let key: SymmetricKey?
        var notes: [String] = []
        do { key = try AuditKey.load(path: keyPath ?? path + ".key") } catch {
            key = nil
            notes.append("\(error): links not checked, only checkpoint signatures")
        }
        var report = verifyFile(
            path: path,
            key: key,
            hostKey: hostKey,
            headPath: headPath ?? path + ".head",
            requireHead: true
        )
        report.notes = notes + report.notes
        if hostKey == nil { report.notes.append("no host key given: checkpoint signatures not checked") }
        return report
    }

    static func verifyFile(
        path: String,
        key: SymmetricKey?,
        hostKey: HostPublicKey?,
        headPath: String,
        requireHead: Bool
    ) -> Report {
        guard let data = FileManager.default.contents(atPath: path) else {
            var report = Report()
            report.problems.append("cannot read \(path)")
            return report
        }
        var report = verifyLines(data, key: key, hostKey: hostKey)
        checkHead(&report, headPath: headPath, requireHead: requireHead)
        return report
    }

    /// The links, sequence numbers and checkpoints of a log's contents (not its head).
    package static func verifyLines(_ data: some DataProtocol, key: SymmetricKey?, hostKey: HostPublicKey?) -> Report {
        var report = Report()
        let data = Data(data)
        var current: SegmentReport?
        var previous = ""
        var expectedSeq = 0
        var broken = false
        func close() {
            if var c = current {
                c.intact = !broken
                report.segments.append(c)
            }
            current = nil
        }
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (index, raw) in lines.enumerated() where !raw.isEmpty {
            let n = index + 1
            guard let r = try? JSONDecoder().decode(Record.self, from: Data(raw)), let chain = r.chain else {
                if !broken { report.problems.append("line \(n) is not an audit record") }
                broken = true
                continue
            }
            if r.event == "segment-start" && (current == nil || r.segment != current?.segment || broken) {
                // A new segment: an earlier break does not spoil it.
                close()
                broken = false
                previous = r.prev ?? ""
                expectedSeq = r.seq
                current = SegmentReport(
                    segment: r.segment,
                    firstLine: n,
                    records: 0,
                    checkpoints: 0,
                    lastSeq: 0,
                    lastChain: "",
                    intact: true
                )
            }
            guard !broken else { continue }
            if current == nil {
                current = SegmentReport(
                    segment: r.segment,
                    firstLine: n,
                    records: 0,
                    checkpoints: 0,
                    lastSeq: 0,
                    lastChain: "",
                    intact: true
                )
                expectedSeq = r.seq
                previous = ""
                report.notes.append(
                    "line \(n): the log does not start with a segment-start record (a rotated-out part is not given)"
                )
            }
            guard r.segment == current?.segment else {
                report.problems.append("line \(n) belongs to segment \(r.segment), not \(current?.segment ?? "")")
                broken = true
                continue
            }
            guard r.seq == expectedSeq else {
                report.problems.append(AuditError.sequenceGap(line: n, expected: expectedSeq, found: r.seq).description)
                broken = true
                continue
            }
            if let key, link(key: key, previous: previous, record: r) != chain {
                report.problems.append(AuditError.brokenChain(line: n).description)
                broken = true
                continue
            }
            if r.event == "checkpoint" {
                let signature = r.sig.flatMap { Data(base64Encoded: $0) }.map { Array($0) } ?? []
                // The checkpoint signs the link before it.
                let message = checkpointMessage(segment: r.segment, seq: r.seq - 1, chain: previous)
                if let hostKey {
                    guard hostKey.signing.isValidSignature(signature, for: message, context: checkpointContext) else {
                        report.problems.append(AuditError.badCheckpoint(line: n).description)
                        broken = true
                        continue
                    }
                }
                current?.checkpoints += 1
            }
            previous = chain
            expectedSeq += 1
            current?.records += 1
            current?.lastSeq = r.seq
            current?.lastChain = chain
        }
        close()
        return report
    }

    /// The head names the last link written: a log that ends earlier was cut off.
    static func checkHead(_ report: inout Report, headPath: String, requireHead: Bool) {
        if let tail = report.segments.last, tail.intact {
            if let text = try? String(contentsOfFile: headPath, encoding: .utf8) {
                let parts = text.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                if parts.count == 3, let headSeq = Int(parts[1]) {
                    if parts[0] != tail.segment || headSeq != tail.lastSeq || parts[2] != tail.lastChain {
                        report.problems.append(
                            AuditError.truncated(
                                "\(headPath) names record \(headSeq) of segment \(parts[0]), the log ends at record \(tail.lastSeq) of segment \(tail.segment)"
                            ).description
                        )
                    }
                } else {
                    report.problems.append("\(headPath) is not a head record")
                }
            } else if requireHead {
                report.problems.append("\(headPath) is missing, so a cut-off end cannot be ruled out")
            }
        }
    }
}

/// The audit log's HMAC key: 32 random bytes (hex) in a file of its own, created 0600 and
/// refused when others can read or write it, or when it belongs to another account.
public enum AuditKey {
    public static func loadOrCreate(path: String) throws -> SymmetricKey {
        if !FileManager.default.fileExists(atPath: path) {
            let bytes = try SecureRandom().bytes(32)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw AuditLog.AuditError.keyFile("cannot create \(path): \(String(cString: strerror(errno)))")
            }
            let text = Array((bytes.map { String(format: "%02x", $0) }.joined() + "\n").utf8)
            let n = text.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard n == text.count else { throw AuditLog.AuditError.keyFile("cannot write \(path)") }
        }
        return try load(path: path)
    }

    public static func load(path: String) throws -> SymmetricKey {
        let bytes: [UInt8]
        do { bytes = try SafeFile.read(path: path, owner: getuid(), limit: 4096) } catch {
            throw AuditLog.AuditError.keyFile("audit key \(error)")
        }
        var st = stat()
        if stat(path, &st) == 0 && st.st_mode & 0o077 != 0 {
            throw AuditLog.AuditError.keyFile("audit key \(path) is readable by group or others (chmod 600 it)")
        }
        let hex = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard hex.count == 64, let key = Self.unhex(hex) else {
            throw AuditLog.AuditError.keyFile("audit key \(path) is not 64 hex digits")
        }
        return SymmetricKey(data: key)
    }

    static func unhex(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            guard let b = UInt8(s[i..<j], radix: 16) else { return nil }
            out.append(b)
            i = j
        }
        return out
    }
}
