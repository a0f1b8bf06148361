import Foundation
import QNSP
import QNSPCrypto
import QSSHSession

/// A known_hosts file pinning host keys: `<host>|[<host>]:<port> qnsp-xwing-mldsa65 <base64> [comment]`.
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

    public let path: String
    public private(set) var entries: [Entry] = []
    /// `<patterns> qnsp-stealth1 <base64>` lines: the stealth line of those hosts (docs/protocol.md §9.1).
    public private(set) var stealthEntries: [(patterns: [String], line: StealthLine)] = []

    public init(path: String, text: String) {
        self.path = path
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[1].hasPrefix(StealthLine.prefix + " "), let stealth = try? StealthLine(parsing: String(parts[1])) {
                stealthEntries.append((parts[0].split(separator: ",").map(String.init), stealth))
                continue
            }
            guard parts.count == 2, case .host(let key, _)? = try? PublicKeyLine(parsing: String(parts[1])) else { continue }
            entries.append(Entry(patterns: parts[0].split(separator: ",").map(String.init), key: key, line: i + 1))
        }
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

    public func lookup(_ pattern: String) -> (entry: Entry?, Lookup) {
        guard let e = entries.first(where: { $0.patterns.contains { Self.matches($0, name: pattern) } }) else { return (nil, .unknown) }
        return (e, .known(e.key))
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
