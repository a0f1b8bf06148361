import Crypto
import Foundation

/// An append-only, hash-chained audit log: one JSON object per line, each carrying
/// `chain` = hex(SHA-256(previous chain || the line's JSON without `chain`)). Editing,
/// inserting or removing a line breaks every later link, which `verify` reports.
/// (Cutting lines off the end is only caught against a copy of the last chain value.)
public final class AuditLog: @unchecked Sendable {
    /// One audited event.
    public struct Record: Codable, Equatable, Sendable {
        public var seq: Int
        public var time: String
        public var event: String
        public var peer: String?
        public var user: String?
        public var key: String?
        public var detail: String?
        public var chain: String?
    }

    /// Errors reading or verifying a log.
    public enum AuditError: Error, Equatable, CustomStringConvertible {
        case unreadable(String)
        case malformedLine(Int)
        case brokenChain(line: Int)
        case sequenceGap(line: Int, expected: Int, found: Int)

        public var description: String {
            switch self {
            case .unreadable(let why): return "cannot read the audit log: \(why)"
            case .malformedLine(let n): return "line \(n) is not an audit record"
            case .brokenChain(let n): return "line \(n) does not match the hash chain: it or an earlier line was edited, inserted or removed"
            case .sequenceGap(let n, let e, let f): return "line \(n) has sequence \(f), expected \(e): a line was removed"
            }
        }
    }

    public static let genesis = String(repeating: "0", count: 64)

    private let lock = NSLock()
    private let handle: FileHandle
    private var last: String
    private var seq: Int

    /// Opens (or creates, mode 0600) `path` and continues its chain.
    public init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw AuditError.unreadable("cannot create \(path)")
            }
        }
        let tail = try Self.verify(path: path)
        last = tail.chain
        seq = tail.count
        guard let h = FileHandle(forWritingAtPath: path) else { throw AuditError.unreadable("cannot open \(path) for appending") }
        handle = h
        handle.seekToEndOfFile()
    }

    /// Appends one event.
    public func record(_ event: String, peer: String? = nil, user: String? = nil, key: String? = nil, detail: String? = nil) {
        lock.lock()
        defer { lock.unlock() }
        seq += 1
        var r = Record(seq: seq, time: ISO8601DateFormatter().string(from: Date()), event: event, peer: peer, user: user, key: key, detail: detail)
        r.chain = Self.link(previous: last, record: r)
        guard let chain = r.chain, let data = try? Self.encoder.encode(r) else { return }
        last = chain
        handle.write(data + Data("\n".utf8))
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// chain = hex(SHA-256(previous || JSON of the record without its chain)).
    static func link(previous: String, record: Record) -> String? {
        var unchained = record
        unchained.chain = nil
        guard let body = try? encoder.encode(unchained) else { return nil }
        var h = SHA256()
        h.update(data: Data(previous.utf8))
        h.update(data: body)
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Checks every link; returns the number of records and the last chain value.
    @discardableResult
    public static func verify(path: String) throws -> (count: Int, chain: String) {
        guard let data = FileManager.default.contents(atPath: path) else { throw AuditError.unreadable(path) }
        var previous = genesis
        var count = 0
        for (i, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).enumerated() {
            guard let r = try? JSONDecoder().decode(Record.self, from: Data(line)), let chain = r.chain else {
                throw AuditError.malformedLine(i + 1)
            }
            guard r.seq == count + 1 else { throw AuditError.sequenceGap(line: i + 1, expected: count + 1, found: r.seq) }
            guard link(previous: previous, record: r) == chain else { throw AuditError.brokenChain(line: i + 1) }
            previous = chain
            count += 1
        }
        return (count, previous)
    }
}
