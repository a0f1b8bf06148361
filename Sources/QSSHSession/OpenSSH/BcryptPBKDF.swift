import Crypto

/// OpenBSD's `bcrypt_pbkdf`, the key derivation of passphrase-protected OpenSSH private keys
/// (kdf "bcrypt": salt and rounds in the key file).
public enum BcryptPBKDF {
    /// Derives `count` bytes from `passphrase` and `salt` with `rounds` rounds; nil for parameters
    /// out of range (they come from a key file: 1–1024 bytes, 1–65536 rounds, a salt of 1–1024 bytes).
    public static func derive(passphrase: [UInt8], salt: [UInt8], count: Int, rounds: Int) -> [UInt8]? {
        guard (1...1024).contains(count), (1...65536).contains(rounds), (1...1024).contains(salt.count) else { return nil }
        let hashSize = 32
        let stride = (count + hashSize - 1) / hashSize
        let amount = (count + stride - 1) / stride
        let sha2pass = Array(SHA512.hash(data: passphrase))
        var key = [UInt8](repeating: 0, count: count)
        var remaining = count
        var block: UInt32 = 1
        while remaining > 0 {
            let countSalt = salt + [UInt8(block >> 24), UInt8((block >> 16) & 0xFF), UInt8((block >> 8) & 0xFF), UInt8(block & 0xFF)]
            var sha2salt = Array(SHA512.hash(data: countSalt))
            var tmp = hash(sha2pass: sha2pass, sha2salt: sha2salt)
            var out = tmp
            for _ in 1..<rounds {
                sha2salt = Array(SHA512.hash(data: tmp))
                tmp = hash(sha2pass: sha2pass, sha2salt: sha2salt)
                for i in 0..<out.count { out[i] ^= tmp[i] }
            }
            // Output bytes are spread over the key (stride apart), as the reference does.
            var i = 0
            while i < min(amount, remaining) {
                let dest = i * stride + Int(block - 1)
                if dest >= count { break }
                key[dest] = out[i]
                i += 1
            }
            remaining -= i
            block += 1
        }
        return key
    }

    /// `bcrypt_hash`: 32 bytes from the SHA-512 of the passphrase and of the salt.
    static func hash(sha2pass: [UInt8], sha2salt: [UInt8]) -> [UInt8] {
        var state = Blowfish()
        state.expand(data: sha2salt, key: sha2pass)
        for _ in 0..<64 {
            state.expand0(key: sha2salt)
            state.expand0(key: sha2pass)
        }
        let magic = Array("OxychromaticBlowfishSwatDynamite".utf8)
        var j = 0
        var words = (0..<8).map { _ in Blowfish.streamWord(magic, &j) }
        for _ in 0..<64 {
            for k in Swift.stride(from: 0, to: 8, by: 2) {
                var l = words[k], r = words[k + 1]
                state.encrypt(&l, &r)
                words[k] = l; words[k + 1] = r
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(32)
        for w in words { out += [UInt8(w & 0xFF), UInt8((w >> 8) & 0xFF), UInt8((w >> 16) & 0xFF), UInt8(w >> 24)] }
        return out
    }
}
