import Crypto
import Foundation

// MARK: - Cipher suite provider

/// The primitives of one cipher suite (hash, KDF, MAC, AEAD, HPKE, signatures) and the
/// MLS labeled constructions built on them (RFC 9420 §5 and §8).
public struct CipherSuiteProvider: Sendable {
    public let suite: CipherSuite
    let hash: HashAlgorithm
    let aead: AEADAlgorithm
    let kem: KEMAlgorithm
    let signature: SignatureAlgorithm

    public init(_ suite: CipherSuite) throws(MLSCryptoError) {
        self.suite = suite
        switch suite {
        case .x25519Aes128Sha256Ed25519:
            (hash, aead, kem, signature) = (.sha256, .aes128GCM, .x25519, .ed25519)
        case .p256Aes128Sha256P256:
            (hash, aead, kem, signature) = (.sha256, .aes128GCM, .p256, .ecdsaP256)
        case .x25519ChaChaSha256Ed25519:
            (hash, aead, kem, signature) = (.sha256, .chaCha20Poly1305, .x25519, .ed25519)
        case .p521Aes256Sha512P521:
            (hash, aead, kem, signature) = (.sha512, .aes256GCM, .p521, .ecdsaP521)
        case .p384Aes256Sha384P384:
            (hash, aead, kem, signature) = (.sha384, .aes256GCM, .p384, .ecdsaP384)
        case .xwingAes256Sha384MLDSA65:
            (hash, aead, kem, signature) = (.sha384, .aes256GCM, .xWing, .mlDSA65)
        default:
            throw .unsupportedCipherSuite(suite.rawValue)
        }
    }

    // MARK: Sizes

    /// `KDF.Nh`: the hash (and extract) output length.
    public var hashLength: Int {
        hash.length
    }

    /// `AEAD.Nk`.
    public var aeadKeyLength: Int {
        aead.keyLength
    }

    /// `AEAD.Nn`.
    public var aeadNonceLength: Int {
        aead.nonceLength
    }

    // MARK: Hash and MAC

    /// The suite's hash of `data`.
    public func digest(_ data: [UInt8]) -> [UInt8] {
        Self.digest(hash, data)
    }

    static func digest(_ algorithm: HashAlgorithm, _ data: [UInt8]) -> [UInt8] {
        switch algorithm {
        case .sha256:
            return Array(SHA256.hash(data: data))
        case .sha384:
            return Array(SHA384.hash(data: data))
        case .sha512:
            return Array(SHA512.hash(data: data))
        }
    }

    /// HMAC with the suite's hash.
    public func mac(key: [UInt8], data: [UInt8]) -> [UInt8] {
        Self.hmac(hash, key: key, data: data)
    }

    static func hmac(_ algorithm: HashAlgorithm, key: [UInt8], data: [UInt8]) -> [UInt8] {
        let symmetric = SymmetricKey(data: key)
        switch algorithm {
        case .sha256:
            return Array(HMAC<SHA256>.authenticationCode(for: data, using: symmetric))
        case .sha384:
            return Array(HMAC<SHA384>.authenticationCode(for: data, using: symmetric))
        case .sha512:
            return Array(HMAC<SHA512>.authenticationCode(for: data, using: symmetric))
        }
    }

    /// Checks a MAC in constant time.
    public func verifyMAC(key: [UInt8], data: [UInt8], tag: [UInt8]) -> Bool {
        ConstantTime.equal(mac(key: key, data: data), tag)
    }

    // MARK: KDF (HKDF)

    /// `KDF.Extract(salt, ikm)`.
    public func extract(salt: [UInt8], ikm: [UInt8]) -> [UInt8] {
        Self.hkdfExtract(hash, salt: salt, ikm: ikm)
    }

    /// `KDF.Expand(prk, info, length)`.
    public func expand(prk: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        Self.hkdfExpand(hash, prk: prk, info: info, length: length)
    }

    static func hkdfExtract(_ algorithm: HashAlgorithm, salt: [UInt8], ikm: [UInt8]) -> [UInt8] {
        // An empty HMAC key equals the all-zero key of hash length (RFC 5869 §2.2).
        hmac(algorithm, key: salt, data: ikm)
    }

    static func hkdfExpand(_ algorithm: HashAlgorithm, prk: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        precondition(length <= 255 * algorithm.length, "HKDF-Expand output too long")
        var output: [UInt8] = []
        output.reserveCapacity(length + algorithm.length)
        var previous: [UInt8] = []
        var counter: UInt8 = 1
        while output.count < length {
            var block = previous
            block.append(contentsOf: info)
            block.append(counter)
            previous = hmac(algorithm, key: prk, data: block)
            output.append(contentsOf: previous)
            counter &+= 1
        }
        return Array(output.prefix(length))
    }

    // MARK: MLS labeled derivations (RFC 9420 §8)

    /// `ExpandWithLabel(secret, label, context, length)`.
    public func expandWithLabel(secret: [UInt8], label: String, context: [UInt8], length: Int) -> [UInt8] {
        expandWithLabel(secret: secret, label: Array(label.utf8), context: context, length: length)
    }

    /// `ExpandWithLabel` with a label given as bytes (exporter labels are application bytes).
    public func expandWithLabel(secret: [UInt8], label: [UInt8], context: [UInt8], length: Int) -> [UInt8] {
        var info = MLSWriter(capacity: 32 + context.count)
        info.writeUInt16(UInt16(length))
        info.writeOpaque(Self.labelPrefix + label)
        info.writeOpaque(context)
        return expand(prk: secret, info: info.bytes, length: length)
    }

    static let labelPrefix = Array("MLS 1.0 ".utf8)

    /// `DeriveSecret(secret, label)`.
    public func deriveSecret(secret: [UInt8], label: String) -> [UInt8] {
        expandWithLabel(secret: secret, label: label, context: [], length: hashLength)
    }

    /// `DeriveTreeSecret(secret, label, generation, length)`.
    public func deriveTreeSecret(secret: [UInt8], label: String, generation: UInt32, length: Int) -> [UInt8] {
        var context = MLSWriter(capacity: 4)
        context.writeUInt32(generation)
        return expandWithLabel(secret: secret, label: label, context: context.bytes, length: length)
    }

    /// `RefHash(label, value)`.
    public func refHash(label: String, value: [UInt8]) -> [UInt8] {
        var input = MLSWriter(capacity: value.count + 40)
        input.writeOpaque(Array(label.utf8))
        input.writeOpaque(value)
        return digest(input.bytes)
    }

    // MARK: AEAD

    /// AEAD encryption; returns ciphertext followed by the tag.
    public func seal(key: [UInt8], nonce: [UInt8], aad: [UInt8], plaintext: [UInt8]) throws(MLSCryptoError) -> [UInt8] {
        do {
            let symmetric = SymmetricKey(data: key)
            switch aead {
            case .aes128GCM, .aes256GCM:
                let box = try AES.GCM.seal(
                    plaintext,
                    using: symmetric,
                    nonce: try AES.GCM.Nonce(data: nonce),
                    authenticating: aad
                )
                return Array(box.ciphertext) + Array(box.tag)
            case .chaCha20Poly1305:
                let box = try ChaChaPoly.seal(
                    plaintext,
                    using: symmetric,
                    nonce: try ChaChaPoly.Nonce(data: nonce),
                    authenticating: aad
                )
                return Array(box.ciphertext) + Array(box.tag)
            }
        } catch {
            throw .encryptionFailed
        }
    }

    /// AEAD decryption of ciphertext-and-tag.
    public func open(key: [UInt8], nonce: [UInt8], aad: [UInt8], ciphertext: [UInt8]) throws(MLSCryptoError) -> [UInt8]
    {
        guard ciphertext.count >= AEADAlgorithm.tagLength, key.count == aead.keyLength else {
            throw .decryptionFailed
        }
        let body = ciphertext.prefix(ciphertext.count - AEADAlgorithm.tagLength)
        let tag = ciphertext.suffix(AEADAlgorithm.tagLength)
        do {
            let symmetric = SymmetricKey(data: key)
            switch aead {
            case .aes128GCM, .aes256GCM:
                let box = try AES.GCM.SealedBox(nonce: try AES.GCM.Nonce(data: nonce), ciphertext: body, tag: tag)
                return Array(try AES.GCM.open(box, using: symmetric, authenticating: aad))
            case .chaCha20Poly1305:
                let box = try ChaChaPoly.SealedBox(nonce: try ChaChaPoly.Nonce(data: nonce), ciphertext: body, tag: tag)
                return Array(try ChaChaPoly.open(box, using: symmetric, authenticating: aad))
            }
        } catch {
            throw .decryptionFailed
        }
    }

    // MARK: Randomness

    /// Fresh random bytes.
    public func randomBytes(_ count: Int) -> [UInt8] {
        SecureRandom.bytes(count)
    }
}
