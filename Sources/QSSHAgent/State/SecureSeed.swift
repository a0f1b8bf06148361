import CQSSHAgentPosix
import Crypto
import QNSPCrypto

/// A private key seed (ML-DSA-65 or Ed25519) in memory the OS keeps in RAM (mlock) and out of core dumps, wiped
/// when released. The expanded ML-DSA key is made only for the duration of one signature.
///
/// A class (not a struct) because it owns the mapping; it is never mutated after init, so
/// sharing it across threads is safe.
public final class SecureSeed: @unchecked Sendable {
    private let pointer: UnsafeMutableRawPointer
    private let size: Int
    /// Whether mlock succeeded (it can fail under a small RLIMIT_MEMLOCK; the seed is then
    /// still excluded from core dumps and wiped on release).
    public let isLocked: Bool

    /// Copies `seed` in and wipes the caller's copy.
    public init(wiping seed: inout [UInt8]) throws(AgentError) {
        var locked: Int32 = 0
        guard let p = qssh_agent_secure_alloc(seed.count, &locked) else {
            ConstantTime.wipe(&seed)
            throw .outOfSecureMemory
        }
        pointer = p
        size = seed.count
        isLocked = locked == 1
        seed.withUnsafeBytes { src in
            if let base = src.baseAddress { p.copyMemory(from: base, byteCount: src.count) }
        }
        ConstantTime.wipe(&seed)
    }

    deinit { qssh_agent_secure_free(pointer, size) }

    /// Signs with the key this seed generates; the temporary copy is wiped afterwards.
    func sign(_ message: [UInt8], context: [UInt8]) throws(QNSPCryptoError) -> [UInt8] {
        var copy = [UInt8](UnsafeRawBufferPointer(start: pointer, count: size))
        defer { ConstantTime.wipe(&copy) }
        return try SignatureScheme.PrivateKey(seed: copy).sign(message, context: context)
    }

    /// Signs with the Ed25519 key this seed is (RFC 8032).
    func signEd25519(_ message: [UInt8]) -> [UInt8]? {
        var copy = [UInt8](UnsafeRawBufferPointer(start: pointer, count: size))
        defer { ConstantTime.wipe(&copy) }
        guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: copy),
            let signature = try? key.signature(for: message)
        else { return nil }
        return Array(signature)
    }

    /// The Ed25519 public key of a seed (nil when it is not 32 bytes).
    static func ed25519PublicKey(seed: [UInt8]) -> [UInt8]? {
        guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else { return nil }
        return Array(key.publicKey.rawRepresentation)
    }
}
