import CSodium
import Foundation

/// Byte-string helpers of the OPAQUE specification: I2OSP, constant-time comparison and
/// length-checked field reads for the message decoders.
package enum Bytes {
    /// I2OSP(value, 2): big-endian two bytes. `value` must fit (callers check peer- and user-supplied lengths).
    package static func i2osp2(_ value: Int) -> [UInt8] {
        precondition(value >= 0 && value <= 0xFFFF, "I2OSP(_, 2) of \(value)")
        return [UInt8(value >> 8), UInt8(value & 0xFF)]
    }

    /// Constant-time equality; lengths are public.
    package static func constantTimeEquals(_ a: some ContiguousBytes, _ b: some ContiguousBytes) -> Bool {
        a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                guard x.count == y.count else { return false }
                guard x.count > 0 else { return true }
                return csodium_memcmp(x.baseAddress, y.baseAddress, x.count) == 0
            }
        }
    }

    /// `a XOR b` for two arrays of the same length.
    package static func xor(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        precondition(a.count == b.count, "xor of unequal lengths")
        var out = [UInt8](repeating: 0, count: a.count)
        for index in 0..<a.count {
            out[index] = a[index] ^ b[index]
        }
        return out
    }

    /// The ASCII bytes of a label.
    package static func ascii(_ label: String) -> [UInt8] {
        Array(label.utf8)
    }
}
