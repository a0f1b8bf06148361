import Crypto
import Foundation

/// expand_message_xmd with SHA-512 (RFC 9380 §5.3.1): b_in_bytes = 64, s_in_bytes = 128.
package enum ExpandMessageXMD {
    /// `length` uniform bytes from `message` under the domain separation tag `dst` (at most 255 bytes:
    /// every tag in this library is a short constant).
    package static func sha512(message: some ContiguousBytes, dst: [UInt8], length: Int) -> SecretBytes {
        precondition(!dst.isEmpty && dst.count <= 255, "DST length \(dst.count)")
        precondition(length > 0 && length <= 255 * 64 && length <= 0xFFFF, "expand_message_xmd length \(length)")
        let ell = (length + 63) / 64
        let dstPrime = dst + [UInt8(dst.count)]
        let zPad = [UInt8](repeating: 0, count: 128)
        let lengthBytes = Bytes.i2osp2(length)
        let b0 = SHA512KDF.secretHash([zPad, message, lengthBytes, [UInt8(0)], dstPrime])
        return SecretBytes(count: length) { (out: UnsafeMutableRawBufferPointer) in
            var previous = SHA512KDF.secretHash([b0, [UInt8(1)], dstPrime])
            var written = 0
            for index in 1...ell {
                if index > 1 {
                    let mixed = SecretBytes(count: 64) { (x: UnsafeMutableRawBufferPointer) in
                        b0.withUnsafeBytes { a in
                            previous.withUnsafeBytes { b in
                                for offset in 0..<64 {
                                    x[offset] = a[offset] ^ b[offset]
                                }
                            }
                        }
                    }
                    previous = SHA512KDF.secretHash([mixed, [UInt8(index)], dstPrime])
                }
                let take = min(64, length - written)
                previous.withUnsafeBytes { raw in
                    let target = UnsafeMutableRawBufferPointer(rebasing: out[written..<(written + take)])
                    target.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<take]))
                }
                written += take
            }
        }
    }
}
