import Crypto

/// A number two users compare to check that the server gave each the other's real identity keys
/// (Signal's numeric fingerprint, adapted to accounts with several devices):
///
///     fingerprint(user, keys) = first 30 bytes of H^5200, where
///         H^0 = SHA-512(u16(0) || keys || user), H^(i+1) = SHA-512(H^i || keys)
///         keys = the identity keys of every live device, ordered by device id, concatenated
///     digits = each 5-byte chunk as a big-endian integer mod 100000, 5 digits each (30 digits)
///     safety number = the two 30-digit strings, the smaller first (so both sides see the same 60)
package enum QPQSafetyNumber {
    static let iterations = 5200

    static func fingerprint(user: String, keys: [[UInt8]]) -> String {
        let joined = keys.flatMap { $0 }
        var digest = Array(SHA512.hash(data: [0, 0] + joined + Array(user.utf8)))
        for _ in 0..<iterations { digest = Array(SHA512.hash(data: digest + joined)) }
        var out = ""
        for chunk in 0..<6 {
            let value = digest[(chunk * 5)..<(chunk * 5 + 5)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } % 100_000
            let text = String(value)
            out += String(repeating: "0", count: 5 - text.count) + text
        }
        return out
    }

    /// The 60 digits for two accounts (order-independent).
    package static func compute(_ a: (user: String, keys: [[UInt8]]), _ b: (user: String, keys: [[UInt8]])) -> String {
        let x = fingerprint(user: a.user, keys: a.keys), y = fingerprint(user: b.user, keys: b.keys)
        return x < y ? x + y : y + x
    }

    /// Groups of five digits, four groups a line (as Signal shows it).
    package static func formatted(_ digits: String) -> String {
        let chars = Array(digits)
        var groups: [String] = []
        var i = 0
        while i < chars.count {
            groups.append(String(chars[i..<min(i + 5, chars.count)]))
            i += 5
        }
        return stride(from: 0, to: groups.count, by: 4).map { groups[$0..<min($0 + 4, groups.count)].joined(separator: " ") }
            .joined(separator: "\n")
    }
}
