import Crypto
import Foundation
import QNSPCrypto

/// OpenSSH's hashed host names in known_hosts files, `|1|<base64 salt>|<base64 HMAC-SHA1(salt,
/// name)>`: used by qssh's own known_hosts (`HashKnownHosts`) and when reading OpenSSH's.
public enum HashedHostName {
    /// Whether `stored` is in the hashed form.
    public static func isHashed(_ stored: String) -> Bool { stored.hasPrefix("|1|") }

    /// Whether the hashed entry `stored` names `name` (compared in constant time); false for a
    /// malformed entry.
    public static func matches(_ stored: String, name: String) -> Bool {
        let parts = stored.split(separator: "|")
        guard isHashed(stored), parts.count == 3, let salt = Data(base64Encoded: String(parts[1])),
              let hash = Data(base64Encoded: String(parts[2])) else { return false }
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(name.utf8), using: SymmetricKey(data: salt))
        return ConstantTime.equals(Array(mac), [UInt8](hash))
    }

    /// The hashed form of `name`, with a fresh 20-byte salt.
    public static func make(_ name: String) throws -> String {
        let salt = try SecureRandom().bytes(20)
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(name.utf8), using: SymmetricKey(data: salt))
        return "|1|" + Data(salt).base64EncodedString() + "|" + Data(mac).base64EncodedString()
    }
}
