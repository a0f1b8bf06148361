import Foundation
import QNSPCrypto

/// An authorized_keys file: one `qnsp-mldsa65 <base64> [comment]` per line; `#` comments and blank lines ignored.
public struct AuthorizedKeys: Sendable {
    public private(set) var keys: [UserPublicKey] = []
    /// Lines that did not parse, with their numbers, reported rather than silently dropped.
    public private(set) var problems: [(line: Int, reason: String)] = []

    public init(text: String) {
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            do {
                guard case .user(let key, _) = try PublicKeyLine(parsing: line) else {
                    problems.append((i + 1, "not a user key")); continue
                }
                keys.append(key)
            } catch {
                problems.append((i + 1, "\(error)"))
            }
        }
    }

    public static func load(path: String) throws -> AuthorizedKeys {
        AuthorizedKeys(text: try KeyFileIO.readText(path: path))
    }

    public func contains(_ key: UserPublicKey) -> Bool {
        keys.contains { ConstantTime.equals($0.blob, key.blob) }
    }
}

