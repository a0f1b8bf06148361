import CSodium
import Foundation

/// A non-zero scalar modulo the ristretto255 group order L, kept in a wiped ``SecretBytes`` buffer
/// (32 bytes, little-endian). OPRF keys, blinds and Diffie-Hellman private keys are scalars.
package struct Ristretto255Scalar: Sendable, ContiguousBytes {
    /// Nsk = Nok = 32.
    package static let size = 32

    /// L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    private static let order: [UInt8] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
    ]

    private let secret: SecretBytes

    private init(secret: SecretBytes) {
        self.secret = secret
    }

    /// Decodes key material (RFC 9497 §2.1 DeserializeScalar): 32 bytes, less than L, not zero.
    package init(canonical input: some Collection<UInt8>) throws(OPAQUEError) {
        let candidate = SecretBytes(copying: input)
        guard candidate.count == Self.size else {
            throw .invalidScalar("expected \(Self.size) bytes, got \(candidate.count)")
        }
        guard Self.isCanonical(candidate) else { throw .invalidScalar("not reduced modulo the group order") }
        guard !Self.isZero(candidate) else { throw .invalidScalar("zero") }
        secret = candidate
    }

    /// A uniformly random non-zero scalar (RFC 9497 RandomScalar).
    package static func random() -> Ristretto255Scalar {
        Sodium.ensureInitialized()
        let bytes = SecretBytes(count: size) { (out: UnsafeMutableRawBufferPointer) in
            csodium_ristretto255_scalar_random(out.baseAddress?.assumingMemoryBound(to: UInt8.self))
        }
        return Ristretto255Scalar(secret: bytes)
    }

    /// 64 bytes read as a little-endian integer and reduced modulo L (RFC 9497 HashToScalar's last step);
    /// `nil` when the result is zero.
    package static func reducing(wide input: SecretBytes) -> Ristretto255Scalar? {
        precondition(input.count == 64, "scalar reduction takes 64 bytes")
        Sodium.ensureInitialized()
        let bytes = SecretBytes(count: size) { (out: UnsafeMutableRawBufferPointer) in
            input.withUnsafeBytes { wide in
                csodium_ristretto255_scalar_reduce(
                    out.baseAddress?.assumingMemoryBound(to: UInt8.self),
                    wide.baseAddress?.assumingMemoryBound(to: UInt8.self)
                )
            }
        }
        return isZero(bytes) ? nil : Ristretto255Scalar(secret: bytes)
    }

    /// The multiplicative inverse modulo L (never fails: the scalar is non-zero).
    package func inverted() -> Ristretto255Scalar {
        var status: Int32 = 0
        let bytes = SecretBytes(count: Self.size) { (out: UnsafeMutableRawBufferPointer) in
            status = secret.withUnsafeBytes { s in
                csodium_ristretto255_scalar_invert(
                    out.baseAddress?.assumingMemoryBound(to: UInt8.self),
                    s.baseAddress?.assumingMemoryBound(to: UInt8.self)
                )
            }
        }
        precondition(status == 0, "inverse of a zero scalar")
        return Ristretto255Scalar(secret: bytes)
    }

    /// The encoding (32 bytes, little-endian), as a secret.
    package var serialized: SecretBytes { secret }

    package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try secret.withUnsafeBytes(body)
    }

    /// `value < L`, computed without data-dependent branches (a borrow through value - L).
    private static func isCanonical(_ value: SecretBytes) -> Bool {
        value.withUnsafeBytes { raw in
            var borrow: Int = 0
            for index in 0..<size {
                let difference = Int(raw[index]) - Int(order[index]) - borrow
                borrow = (difference >> 8) & 1
            }
            return borrow == 1
        }
    }

    private static func isZero(_ value: SecretBytes) -> Bool {
        value.withUnsafeBytes { raw in
            var accumulator: UInt8 = 0
            for byte in raw {
                accumulator |= byte
            }
            return accumulator == 0
        }
    }
}
