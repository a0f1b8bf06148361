import Crypto
import Foundation

/// The symmetric primitives of the ristretto255-SHA512 configuration: Hash = SHA-512, KDF = HKDF-SHA-512
/// (RFC 5869 Extract / Expand), MAC = HMAC-SHA-512. Nh = Nx = Nm = 64.
package enum SHA512KDF {
    /// Nh, Nx and Nm.
    package static let outputSize = 64

    /// SHA-512 of the concatenation of `parts`.
    package static func hash(_ parts: [any ContiguousBytes]) -> [UInt8] {
        var hasher = SHA512()
        for part in parts {
            part.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        }
        return Array(hasher.finalize())
    }

    /// SHA-512 of `parts`, for inputs that are secret (the result is wiped too).
    package static func secretHash(_ parts: [any ContiguousBytes]) -> SecretBytes {
        var hasher = SHA512()
        for part in parts {
            part.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        }
        let digest = hasher.finalize()
        return digest.withUnsafeBytes { SecretBytes(copying: $0) }
    }

    /// HMAC-SHA-512(key, concatenation of `parts`).
    package static func mac(key: some ContiguousBytes, _ parts: [any ContiguousBytes]) -> SecretBytes {
        var hmac = HMAC<SHA512>(key: SymmetricKey(data: key))
        for part in parts {
            part.withUnsafeBytes { hmac.update(data: $0) }
        }
        let code = hmac.finalize()
        return code.withUnsafeBytes { SecretBytes(copying: $0) }
    }

    /// HKDF-Extract(salt, ikm) = HMAC(salt, ikm). An empty salt is HMAC's all-zero key (RFC 5869 §2.2).
    package static func extract(salt: some ContiguousBytes, ikm: some ContiguousBytes) -> SecretBytes {
        mac(key: salt, [ikm])
    }

    /// HKDF-Expand(prk, info, length), length <= 255 * 64.
    package static func expand(prk: some ContiguousBytes, info: [any ContiguousBytes], length: Int) -> SecretBytes {
        precondition(length > 0 && length <= 255 * outputSize, "HKDF-Expand length \(length)")
        let key = SymmetricKey(data: prk)
        let blocks = (length + outputSize - 1) / outputSize
        return SecretBytes(count: length) { (out: UnsafeMutableRawBufferPointer) in
            var previous: SecretBytes?
            var written = 0
            for counter in 1...blocks {
                var hmac = HMAC<SHA512>(key: key)
                if let previous {
                    previous.withUnsafeBytes { hmac.update(data: $0) }
                }
                for part in info {
                    part.withUnsafeBytes { hmac.update(data: $0) }
                }
                hmac.update(data: [UInt8(counter)])
                let block = hmac.finalize().withUnsafeBytes { SecretBytes(copying: $0) }
                let take = min(outputSize, length - written)
                block.withUnsafeBytes { raw in
                    let target = UnsafeMutableRawBufferPointer(rebasing: out[written..<(written + take)])
                    target.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<take]))
                }
                written += take
                previous = block
            }
        }
    }
}
