import Foundation
import NIOSSH

/// Checks a host key against OpenSSH's known_hosts files (plain and hashed `|1|` names,
/// comma-separated patterns with `*`/`?` and `!` negation, `[host]:port`), for the classical
/// server behind a qsshd bridge. Read-only: qssh never writes these files.
public struct OpenSSHKnownHosts: Sendable {
    /// The outcome for one host.
    public enum Verdict: Equatable {
        case match
        case mismatch(line: Int)
        /// The key is listed under `@revoked` (for this host or any).
        case revoked(line: Int)
        case unknown
    }

    struct Entry: Sendable {
        var patterns: String
        var key: NIOSSHPublicKey
        var line: Int
        var revoked = false
    }

    let entries: [Entry]
    public let path: String

    /// Loads `path`; a missing file is an empty list.
    public init(path: String) {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        self.init(path: path, text: text)
    }

    public init(path: String, text: String) {
        self.path = path
        var entries: [Entry] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var fields = raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            let revoked = fields.first == "@revoked"
            if revoked { fields.removeFirst() }
            // Other markers (@cert-authority) are not supported: such lines are skipped.
            guard let first = fields.first, !first.hasPrefix("#"), !first.hasPrefix("@"), fields.count >= 3,
                  let key = try? NIOSSHPublicKey(openSSHPublicKey: fields[1] + " " + fields[2]) else { continue }
            entries.append(Entry(patterns: first, key: key, line: i + 1, revoked: revoked))
        }
        self.entries = entries
    }

    /// The verdict for `key` presented by `host` on `port` (22 is written without brackets).
    public func check(host: String, port: Int, key: NIOSSHPublicKey) -> Verdict {
        let name = port == 22 ? host : "[\(host)]:\(port)"
        if let r = entries.first(where: { $0.revoked && $0.key == key }) { return .revoked(line: r.line) }
        var mismatch: Int?
        for e in entries where !e.revoked && Self.matches(patterns: e.patterns, name: name) {
            if e.key == key { return .match }
            // Only a key of the same type contradicts (a host may have several types).
            if Self.keyType(e.key) == Self.keyType(key) { mismatch = mismatch ?? e.line }
        }
        return mismatch.map { .mismatch(line: $0) } ?? .unknown
    }

    static func keyType(_ key: NIOSSHPublicKey) -> Substring {
        String(openSSHPublicKey: key).split(separator: " ").first ?? ""
    }

    static func matches(patterns: String, name: String) -> Bool {
        if HashedHostName.isHashed(patterns) { return HashedHostName.matches(patterns, name: name) }
        var matched = false
        for p in patterns.split(separator: ",") {
            if p.hasPrefix("!") {
                if OpenSSHGlob.matches(String(p.dropFirst()), name) { return false }
            } else if OpenSSHGlob.matches(String(p), name) {
                matched = true
            }
        }
        return matched
    }
}
