import Foundation
import QNSP
import QNSPCrypto
import QSSHSession

/// A known_hosts file pinning host keys: `<host>|[<host>]:<port> qnsp-xwing-mldsa65 <base64> [comment]`,
/// plus `@cert-authority` and `@revoked` lines (docs/protocol.md §7.11).
/// With hashing (qssh `-o HashKnownHosts=yes`), the name is stored as OpenSSH does:
/// `|1|<base64 salt>|<base64 HMAC-SHA1(salt, name)>`, so the file does not list the hosts one visits.
public struct KnownHosts: Sendable {
    /// One parsed line.
    public struct Entry: Sendable {
        public var patterns: [String]
        public var key: HostPublicKey
        public var line: Int
    }

    /// The result of looking a host up.
    public enum Lookup: Sendable {
        case known(HostPublicKey)
        case unknown
    }

    /// An `@cert-authority PATTERNS qnsp-mldsa65 KEY` line: hosts matching the patterns are
    /// trusted when they present a host certificate signed by that key (docs/protocol.md §7.11).
    public struct Authority: Sendable {
        public var patterns: [String]
        public var key: UserPublicKey
        public var line: Int
    }

    /// A host key line as read: its key is decoded only when a lookup needs it (decoding an
    /// X-Wing + ML-DSA-65 key costs far more than matching a name, and a file lists many hosts).
    private struct HostLine: Sendable {
        var patterns: [String]
        var keyText: String
        var line: Int

        var entry: Entry? {
            guard case .host(let key, _)? = try? PublicKeyLine(parsing: keyText) else { return nil }
            return Entry(patterns: patterns, key: key, line: line)
        }
    }

    public let path: String
    private var hostLines: [HostLine] = []
    /// The host key lines whose key can be read (lines that cannot are skipped, as OpenSSH does).
    public var entries: [Entry] { hostLines.compactMap(\.entry) }
    public private(set) var authorities: [Authority] = []
    /// `@revoked PATTERNS KEY` lines: a host key never accepted (pinned or certified) and a CA key
    /// whose certificates are refused, for the hosts matching the patterns.
    public private(set) var revoked: [(patterns: [String], blob: [UInt8], line: Int)] = []
    /// Lines that start with a marker but could not be read (reported, never ignored silently).
    public private(set) var problems: [(line: Int, reason: String)] = []
    /// `<patterns> qnsp-stealth1 <base64>` lines: the stealth line of those hosts (docs/protocol.md §9.1).
    public private(set) var stealthEntries: [(patterns: [String], line: StealthLine)] = []

    public init(path: String, text: String) {
        self.path = path
        // Bytes, not Characters: a file of many hosts is read on every connect, and each line
        // carries a 3 KB key (Foundation's trimming and Character splitting cost milliseconds).
        for (i, raw) in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let line = Self.trimmed(raw)
            guard let first = line.first, first != UInt8(ascii: "#") else { continue }
            if first == UInt8(ascii: "@") {
                readMarker(String(decoding: line, as: UTF8.self), number: i + 1)
                continue
            }
            guard let space = line.firstIndex(where: Self.isBlank) else { continue }
            let patterns = String(decoding: line[..<space], as: UTF8.self).split(separator: ",").map(String.init)
            let rest = String(decoding: Self.trimmed(line[line.index(after: space)...]), as: UTF8.self)
            if rest.hasPrefix(StealthLine.prefix + " ") {
                if let stealth = try? StealthLine(parsing: rest) { stealthEntries.append((patterns, stealth)) }
                continue
            }
            hostLines.append(HostLine(patterns: patterns, keyText: rest, line: i + 1))
        }
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }

    private static func trimmed(_ bytes: Substring.UTF8View) -> Substring.UTF8View {
        var b = bytes
        while let f = b.first, isBlank(f) { b.removeFirst() }
        while let l = b.last, isBlank(l) { b.removeLast() }
        return b
    }

    private mutating func readMarker(_ line: String, number: Int) {
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count == 3 else {
            problems.append((number, "expected '\(parts.first ?? "")' PATTERNS KEY"))
            return
        }
        let patterns = parts[1].split(separator: ",").map(String.init)
        let key: PublicKeyLine
        do { key = try PublicKeyLine(parsing: String(parts[2])) } catch {
            problems.append((number, "\(parts[0]): \(error)"))
            return
        }
        switch (parts[0], key) {
        case ("@cert-authority", .user(let ca, _)):
            authorities.append(Authority(patterns: patterns, key: ca, line: number))
        case ("@cert-authority", .host):
            problems.append((number, "@cert-authority needs a CA key (qnsp-mldsa65), not a host key"))
        case ("@revoked", _):
            revoked.append((patterns, key.blob, number))
        default:
            problems.append((number, "unknown marker '\(parts[0])' (known: @cert-authority, @revoked)"))
        }
    }

    /// Whether a host pattern list (OpenSSH globs, `!` negates) covers `name`.
    static func covers(_ patterns: [String], name: String) -> Bool {
        var matched = false
        for pattern in patterns {
            if pattern.hasPrefix("!") {
                if OpenSSHGlob.matches(String(pattern.dropFirst()), name) { return false }
            } else if HashedHostName.isHashed(pattern) ? HashedHostName.matches(pattern, name: name) : OpenSSHGlob.matches(pattern, name) {
                matched = true
            }
        }
        return matched
    }

    /// The CA keys of the `@cert-authority` lines covering `pattern`, without revoked ones.
    public func certificateAuthorities(_ pattern: String) -> [Authority] {
        authorities.filter { Self.covers($0.patterns, name: pattern) && revokedLine(blob: $0.key.blob, pattern) == nil }
    }

    /// The `@revoked` line listing `blob` for hosts matching `pattern`, if any.
    public func revokedLine(blob: [UInt8], _ pattern: String) -> Int? {
        revoked.first { $0.blob == blob && Self.covers($0.patterns, name: pattern) }?.line
    }

    /// Loads the file; a missing file is an empty list.
    public static func load(path: String) throws -> KnownHosts {
        guard KeyFileIO.exists(path) else { return KnownHosts(path: path, text: "") }
        return KnownHosts(path: path, text: try KeyFileIO.readText(path: path))
    }

    /// The name a host is stored under: `host` on the default port, `[host]:port` otherwise.
    public static func hostPattern(host: String, port: Int, defaultPort: Int) -> String {
        port == defaultPort ? host : "[\(host)]:\(port)"
    }

    /// The first line naming `pattern` whose key can be read.
    public func lookup(_ pattern: String) -> (entry: Entry?, Lookup) {
        for candidate in hostLines where candidate.patterns.contains(where: { Self.matches($0, name: pattern) }) {
            if let e = candidate.entry { return (e, .known(e.key)) }
        }
        return (nil, .unknown)
    }

    /// The stealth line recorded for a host, if any.
    public func stealthLine(_ pattern: String) -> StealthLine? {
        stealthEntries.first { $0.patterns.contains { Self.matches($0, name: pattern) } }?.line
    }

    /// A stored name matches `name` literally, or as a hashed `|1|salt|hash` entry.
    static func matches(_ stored: String, name: String) -> Bool {
        HashedHostName.isHashed(stored) ? HashedHostName.matches(stored, name: name) : stored == name
    }

    /// Appends a line for `pattern` (creating the file 0644 if needed); `hash` stores the name hashed.
    public func appending(pattern: String, key: HostPublicKey, hash: Bool = false) throws -> KnownHosts {
        let pattern = hash ? try HashedHostName.make(pattern) : pattern
        let existing = KeyFileIO.exists(path) ? try KeyFileIO.readText(path: path) : ""
        let sep = existing.isEmpty || existing.hasSuffix("\n") ? "" : "\n"
        let text = existing + sep + pattern + " " + PublicKeyLine.host(key, comment: "").text + "\n"
        try KeyFileIO.writeFile(text, path: path, mode: 0o644)
        return KnownHosts(path: path, text: text)
    }
}
