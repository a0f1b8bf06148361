import Crypto
import QNSPCrypto

/// When a server answers a refused login, so that the time tells nothing about why.
///
/// A refusal for an account that does not exist would otherwise come back sooner than one for a
/// real account whose keys file was read. Every refusal is held until at least `base` plus a
/// per-user offset (derived from the user name with a per-server key, so it is the same on every
/// try for one name and averages nothing away) after the client's proof arrived; when the policy
/// itself took longer, the target doubles until it lies beyond (as sshd does).
public struct RefusalDelay: Sendable {
    public var base: Duration
    public var spread: Duration
    private let key: [UInt8]

    public init(base: Duration = .milliseconds(100), spread: Duration = .milliseconds(50)) {
        self.base = base
        self.spread = spread
        self.key = (try? SecureRandom().bytes(32)) ?? [UInt8](repeating: 7, count: 32)
    }

    /// The time after the proof arrived at which the refusal for `user` is sent, given that the
    /// decision took `elapsed`.
    public func answerTime(user: String, elapsed: Duration) -> Duration {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(user.utf8), using: SymmetricKey(data: key))
        let fraction = Double(mac.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }) / Double(UInt32.max)
        var target = base + spread * fraction
        while target <= elapsed { target *= 2 }
        return target
    }
}
