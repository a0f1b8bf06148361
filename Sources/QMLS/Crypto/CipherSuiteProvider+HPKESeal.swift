import Crypto
import Foundation

// MARK: - HPKE base-mode sealing (RFC 9180 §4.1, §5.1, §6.1)

/// Our own SealBase, so that the `info` hash of the key schedule can be computed once and
/// reused: a Welcome encrypts group secrets to every new member with the same `info` (which
/// embeds the whole encrypted GroupInfo, ratchet tree included), and rehashing it per member
/// made adding N members O(N^2). Opening stays with swift-crypto's HPKE, which checks this
/// implementation in every round trip.
extension CipherSuiteProvider {
    private var hpkeSuiteID: [UInt8] {
        var id = Array("HPKE".utf8)
        for value in [kem.identifier, hpkeKDFIdentifier, hpkeAEADIdentifier] {
            id.append(UInt8(value >> 8))
            id.append(UInt8(value & 0xff))
        }
        return id
    }

    private var hpkeKDFIdentifier: UInt16 {
        switch hash {
        case .sha256:
            return 0x0001
        case .sha384:
            return 0x0002
        case .sha512:
            return 0x0003
        }
    }

    private var hpkeAEADIdentifier: UInt16 {
        switch aead {
        case .aes128GCM:
            return 0x0001
        case .aes256GCM:
            return 0x0002
        case .chaCha20Poly1305:
            return 0x0003
        }
    }

    private func hpkeLabeledExtract(salt: [UInt8], label: String, ikm: [UInt8]) -> [UInt8] {
        extract(salt: salt, ikm: Array("HPKE-v1".utf8) + hpkeSuiteID + Array(label.utf8) + ikm)
    }

    private func hpkeLabeledExpand(prk: [UInt8], label: String, info: [UInt8], length: Int) -> [UInt8] {
        let labeled =
            [UInt8(length >> 8), UInt8(length & 0xff)] + Array("HPKE-v1".utf8) + hpkeSuiteID
            + Array(label.utf8) + info
        return expand(prk: prk, info: labeled, length: length)
    }

    /// `info_hash` of the base-mode key schedule for `info`.
    func hpkeInfoHash(_ info: [UInt8]) -> [UInt8] {
        hpkeLabeledExtract(salt: [], label: "info_hash", ikm: info)
    }

    /// `Encap(pkR)`: the shared secret and the encapsulation.
    private func encapsulate(_ publicKey: [UInt8]) throws(MLSCryptoError) -> (sharedSecret: [UInt8], enc: [UInt8]) {
        do {
            switch kem {
            case .xWing:
                guard publicKey.count == 1216 else {
                    throw MLSCryptoError.invalidPublicKey
                }
                let result = try XWingMLKEM768X25519.PublicKey(rawRepresentation: publicKey).encapsulate()
                return (result.sharedSecret.withUnsafeBytes { Array($0) }, Array(result.encapsulated))
            case .x25519:
                guard publicKey.count == 32 else {
                    throw MLSCryptoError.invalidPublicKey
                }
                let recipient = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: publicKey)
                let ephemeral = Curve25519.KeyAgreement.PrivateKey()
                let dh = try ephemeral.sharedSecretFromKeyAgreement(with: recipient)
                let enc = Array(ephemeral.publicKey.rawRepresentation)
                return (dhExtractAndExpand(dh.withUnsafeBytes { Array($0) }, enc: enc, recipient: publicKey), enc)
            case .p256:
                let recipient = try P256.KeyAgreement.PublicKey(x963Representation: publicKey)
                let ephemeral = P256.KeyAgreement.PrivateKey()
                let dh = try ephemeral.sharedSecretFromKeyAgreement(with: recipient)
                let enc = Array(ephemeral.publicKey.x963Representation)
                return (dhExtractAndExpand(dh.withUnsafeBytes { Array($0) }, enc: enc, recipient: publicKey), enc)
            case .p384:
                let recipient = try P384.KeyAgreement.PublicKey(x963Representation: publicKey)
                let ephemeral = P384.KeyAgreement.PrivateKey()
                let dh = try ephemeral.sharedSecretFromKeyAgreement(with: recipient)
                let enc = Array(ephemeral.publicKey.x963Representation)
                return (dhExtractAndExpand(dh.withUnsafeBytes { Array($0) }, enc: enc, recipient: publicKey), enc)
            case .p521:
                let recipient = try P521.KeyAgreement.PublicKey(x963Representation: publicKey)
                let ephemeral = P521.KeyAgreement.PrivateKey()
                let dh = try ephemeral.sharedSecretFromKeyAgreement(with: recipient)
                let enc = Array(ephemeral.publicKey.x963Representation)
                return (dhExtractAndExpand(dh.withUnsafeBytes { Array($0) }, enc: enc, recipient: publicKey), enc)
            }
        } catch {
            throw .invalidPublicKey
        }
    }

    /// DHKEM's `ExtractAndExpand(dh, enc || pkR)` with the KEM's own KDF and suite ID.
    private func dhExtractAndExpand(_ dh: [UInt8], enc: [UInt8], recipient: [UInt8]) -> [UInt8] {
        let suiteID = Array("KEM".utf8) + [UInt8(kem.identifier >> 8), UInt8(kem.identifier & 0xff)]
        let prefix = Array("HPKE-v1".utf8) + suiteID
        let prk = Self.hkdfExtract(kem.kdf, salt: [], ikm: prefix + Array("eae_prk".utf8) + dh)
        let length = kem.kdf.length
        let info = [UInt8(length >> 8), UInt8(length & 0xff)] + prefix + Array("shared_secret".utf8) + enc + recipient
        return Self.hkdfExpand(kem.kdf, prk: prk, info: info, length: length)
    }

    /// `SealBase(pkR, info, aad, pt)` with a precomputed `info_hash`.
    func hpkeSeal(
        publicKey: [UInt8],
        infoHash: [UInt8],
        aad: [UInt8],
        plaintext: [UInt8]
    ) throws(MLSCryptoError) -> (kemOutput: [UInt8], ciphertext: [UInt8]) {
        let (sharedSecret, enc) = try encapsulate(publicKey)
        let pskIDHash = hpkeLabeledExtract(salt: [], label: "psk_id_hash", ikm: [])
        let context = [UInt8(0)] + pskIDHash + infoHash
        let secret = hpkeLabeledExtract(salt: sharedSecret, label: "secret", ikm: [])
        let key = hpkeLabeledExpand(prk: secret, label: "key", info: context, length: aead.keyLength)
        let nonce = hpkeLabeledExpand(prk: secret, label: "base_nonce", info: context, length: aead.nonceLength)
        return (enc, try seal(key: key, nonce: nonce, aad: aad, plaintext: plaintext))
    }

    /// `EncryptWithLabel` reusing the `info_hash` of a label and context shared by many
    /// recipients (see ``hpkeInfoHash(_:)``).
    func encryptWithLabel(
        publicKey: [UInt8],
        infoHash: [UInt8],
        plaintext: [UInt8]
    ) throws(MLSCryptoError) -> HPKECiphertext {
        let sealed = try hpkeSeal(publicKey: publicKey, infoHash: infoHash, aad: [], plaintext: plaintext)
        return HPKECiphertext(kemOutput: sealed.kemOutput, ciphertext: sealed.ciphertext)
    }

    /// The `info_hash` for `EncryptWithLabel(·, label, context, ·)`.
    func encryptWithLabelInfoHash(label: String, context: [UInt8]) -> [UInt8] {
        hpkeInfoHash(Self.encryptContext(label: label, context: context))
    }
}
