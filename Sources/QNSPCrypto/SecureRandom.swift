#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The CSPRNG for key generation: the operating system's generator, optionally
/// mixed with bytes from an extra entropy source (a file or device such as a QRNG).
///
/// Output = HKDF-SHA-256(ikm = os(32) || extra(32), salt = "qnsp1 rng", info = counter).
/// Mixing can only add entropy: if either input is good, the output is.
/// A configured source that cannot deliver 32 bytes is an error, never skipped.
public struct SecureRandom: Sendable {
    /// Path of the extra entropy source, or nil for the OS generator alone.
    public let extraSourcePath: String?
    public static let extraBytesPerDraw = 32

    public init(extraSourcePath: String? = nil) {
        self.extraSourcePath = extraSourcePath
    }

    /// Reads `extraSourcePath` from the `QNSP_EXTRA_ENTROPY` environment variable when set.
    public static func fromEnvironment() -> SecureRandom {
        let path = ProcessInfo.processInfo.environment["QNSP_EXTRA_ENTROPY"]
        return SecureRandom(extraSourcePath: (path?.isEmpty ?? true) ? nil : path)
    }

    /// Bytes straight from the operating system's CSPRNG.
    public static func systemBytes(_ count: Int) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            var word = rng.next()
            for _ in 0..<8 where i < count {
                out[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        return out
    }

    /// Returns `count` random bytes (at most 8160 per call).
    public func bytes(_ count: Int) throws(QNSPCryptoError) -> [UInt8] {
        precondition(count > 0 && count <= 255 * 32, "internal: random request size out of range")
        var system = Self.systemBytes(32)
        var extra = try extraSourcePath.map { path throws(QNSPCryptoError) in try Self.readExtra(path: path) } ?? []
        defer { ConstantTime.wipe(&system); ConstantTime.wipe(&extra) }
        return Self.mix(system: system, extra: extra, count: count)
    }

    /// The mixing function: HKDF-SHA-256 over `system || extra`.
    public static func mix(system: [UInt8], extra: [UInt8], count: Int) -> [UInt8] {
        var ikm = system + extra
        defer { ConstantTime.wipe(&ikm) }
        let prk = KeyDerivation.extract(salt: Array("qnsp1 rng".utf8), inputKeyMaterial: ikm)
        return KeyDerivation.expand(pseudoRandomKey: prk, info: Array("qnsp1 rng output".utf8), length: count)
    }

    static func readExtra(path: String) throws(QNSPCryptoError) -> [UInt8] {
        do {
            return try KeyFileIO.readExactly(path: path, count: extraBytesPerDraw)
        } catch {
            throw .randomSourceFailed("extra entropy source: \(error)")
        }
    }
}
