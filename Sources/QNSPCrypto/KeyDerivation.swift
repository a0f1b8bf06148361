import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// HKDF (RFC 5869) over SHA-256 or SHA-384, with QNSP's labelled expansion.
///
/// `expandLabel` encodes `u16(length) | u8(len) | "qnsp1 " + label | u8(len) | context`
/// as the HKDF info, in the manner of TLS 1.3's HKDF-Expand-Label, so that every
/// derived key is bound to a distinct label and, via `context`, to a transcript hash.
public enum KeyDerivation {
    public enum Hash: Sendable {
        case sha256, sha384
        public var outputSize: Int { self == .sha256 ? 32 : 48 }
    }

    /// The prefix every QNSP version-1 label carries.
    public static let labelPrefix = "qnsp1 "

    public static func extract(hash: Hash = .sha256, salt: [UInt8], inputKeyMaterial: [UInt8]) -> [UInt8] {
        let ikm = SymmetricKey(data: inputKeyMaterial)
        switch hash {
        case .sha256: return HKDF<SHA256>.extract(inputKeyMaterial: ikm, salt: salt).withUnsafeBytes { Array($0) }
        case .sha384: return HKDF<SHA384>.extract(inputKeyMaterial: ikm, salt: salt).withUnsafeBytes { Array($0) }
        }
    }

    public static func expand(hash: Hash = .sha256, pseudoRandomKey: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        precondition(length > 0 && length <= 255 * hash.outputSize, "internal: HKDF output length out of range")
        let prk = SymmetricKey(data: pseudoRandomKey)
        switch hash {
        case .sha256:
            return HKDF<SHA256>.expand(pseudoRandomKey: prk, info: info, outputByteCount: length).withUnsafeBytes { Array($0) }
        case .sha384:
            return HKDF<SHA384>.expand(pseudoRandomKey: prk, info: info, outputByteCount: length).withUnsafeBytes { Array($0) }
        }
    }

    /// The info string used by `expandLabel`, exposed for the spec's test vectors.
    public static func labelInfo(label: String, context: [UInt8], length: Int) -> [UInt8] {
        let fullLabel = Array((labelPrefix + label).utf8)
        var w = ByteWriter(capacity: 4 + fullLabel.count + context.count)
        w.write(UInt16(length))
        w.writeVector8(fullLabel)
        w.writeVector8(context)
        return w.bytes
    }

    public static func expandLabel(hash: Hash = .sha256, secret: [UInt8], label: String, context: [UInt8], length: Int) -> [UInt8] {
        expand(hash: hash, pseudoRandomKey: secret, info: labelInfo(label: label, context: context, length: length), length: length)
    }

    // MARK: Secrets kept in wipeable memory

    /// HKDF-Extract into a ``SecretBytes`` (no array copy of the output exists).
    public static func extract(hash: Hash = .sha256, salt: some ContiguousBytes, secret ikm: some ContiguousBytes) -> SecretBytes {
        let key = SymmetricKey(data: ikm)
        let saltBytes = salt.withUnsafeBytes { Array($0) }
        switch hash {
        case .sha256: return SecretBytes(copying: HKDF<SHA256>.extract(inputKeyMaterial: key, salt: saltBytes))
        case .sha384: return SecretBytes(copying: HKDF<SHA384>.extract(inputKeyMaterial: key, salt: saltBytes))
        }
    }

    /// HKDF-Expand-Label of a secret into a ``SecretBytes``.
    public static func expandLabelSecret(
        hash: Hash = .sha256, secret: some ContiguousBytes, label: String, context: [UInt8], length: Int
    ) -> SecretBytes {
        precondition(length > 0 && length <= 255 * hash.outputSize, "internal: HKDF output length out of range")
        let prk = SymmetricKey(data: secret)
        let info = labelInfo(label: label, context: context, length: length)
        switch hash {
        case .sha256: return SecretBytes(copying: HKDF<SHA256>.expand(pseudoRandomKey: prk, info: info, outputByteCount: length))
        case .sha384: return SecretBytes(copying: HKDF<SHA384>.expand(pseudoRandomKey: prk, info: info, outputByteCount: length))
        }
    }

    public static func sha256(_ data: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: data)) }
    public static func sha384(_ data: [UInt8]) -> [UInt8] { Array(SHA384.hash(data: data)) }
}
