import Crypto
import Foundation

// MARK: - HPKE (RFC 9180, base mode) and DeriveKeyPair

/// An HPKE key pair in serialized form (`SerializePrivateKey` / `SerializePublicKey`).
public struct HPKEKeyPair: Sendable, Equatable {
    public var privateKey: [UInt8]
    public var publicKey: [UInt8]

    public init(privateKey: [UInt8], publicKey: [UInt8]) {
        self.privateKey = privateKey
        self.publicKey = publicKey
    }
}

extension CipherSuiteProvider {
    var hpkeSuite: HPKE.Ciphersuite {
        let hpkeKEM: HPKE.KEM
        switch kem {
        case .x25519:
            hpkeKEM = .Curve25519_HKDF_SHA256
        case .p256:
            hpkeKEM = .P256_HKDF_SHA256
        case .p384:
            hpkeKEM = .P384_HKDF_SHA384
        case .p521:
            hpkeKEM = .P521_HKDF_SHA512
        case .xWing:
            hpkeKEM = .XWingMLKEM768X25519
        }
        let hpkeKDF: HPKE.KDF
        switch hash {
        case .sha256:
            hpkeKDF = .HKDF_SHA256
        case .sha384:
            hpkeKDF = .HKDF_SHA384
        case .sha512:
            hpkeKDF = .HKDF_SHA512
        }
        let hpkeAEAD: HPKE.AEAD
        switch aead {
        case .aes128GCM:
            hpkeAEAD = .AES_GCM_128
        case .aes256GCM:
            hpkeAEAD = .AES_GCM_256
        case .chaCha20Poly1305:
            hpkeAEAD = .chaChaPoly
        }
        return HPKE.Ciphersuite(kem: hpkeKEM, kdf: hpkeKDF, aead: hpkeAEAD)
    }

    // MARK: Key pairs

    /// A fresh random HPKE key pair.
    public func generateHPKEKeyPair() throws(MLSCryptoError) -> HPKEKeyPair {
        try deriveHPKEKeyPair(ikm: randomBytes(kem.privateKeyLength))
    }

    /// `KEM.DeriveKeyPair(ikm)` (RFC 9180 §7.1.3; X-Wing: draft-connolly-cfrg-xwing-kem-06 §5.6).
    public func deriveHPKEKeyPair(ikm: [UInt8]) throws(MLSCryptoError) -> HPKEKeyPair {
        switch kem {
        case .xWing:
            let seed = SHAKE256.hash(ikm, outputLength: 32)
            return HPKEKeyPair(privateKey: seed, publicKey: try hpkePublicKey(privateKey: seed))
        case .x25519:
            let prk = kemLabeledExtract(salt: [], label: "dkp_prk", ikm: ikm)
            let sk = kemLabeledExpand(prk: prk, label: "sk", info: [], length: 32)
            return HPKEKeyPair(privateKey: sk, publicKey: try hpkePublicKey(privateKey: sk))
        case .p256, .p384, .p521:
            let prk = kemLabeledExtract(salt: [], label: "dkp_prk", ikm: ikm)
            let order = Self.groupOrder(kem)
            let mask: UInt8 = kem == .p521 ? 0x01 : 0xff
            for counter in 0...255 {
                var candidate = kemLabeledExpand(
                    prk: prk,
                    label: "candidate",
                    info: [UInt8(counter)],
                    length: kem.privateKeyLength
                )
                candidate[0] &= mask
                if candidate.contains(where: { $0 != 0 }) && candidate.lexicographicallyPrecedes(order) {
                    return HPKEKeyPair(privateKey: candidate, publicKey: try hpkePublicKey(privateKey: candidate))
                }
            }
            throw .deriveKeyPairFailed
        }
    }

    /// The public key of a serialized HPKE private key.
    public func hpkePublicKey(privateKey: [UInt8]) throws(MLSCryptoError) -> [UInt8] {
        do {
            switch kem {
            case .x25519:
                return Array(
                    try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKey).publicKey.rawRepresentation
                )
            case .p256:
                return Array(
                    try P256.KeyAgreement.PrivateKey(rawRepresentation: SignaturePrivateKey.leftPadded(privateKey, 32))
                        .publicKey.x963Representation
                )
            case .p384:
                return Array(
                    try P384.KeyAgreement.PrivateKey(rawRepresentation: SignaturePrivateKey.leftPadded(privateKey, 48))
                        .publicKey.x963Representation
                )
            case .p521:
                return Array(
                    try P521.KeyAgreement.PrivateKey(rawRepresentation: SignaturePrivateKey.leftPadded(privateKey, 66))
                        .publicKey.x963Representation
                )
            case .xWing:
                let key = try XWingMLKEM768X25519.PrivateKey(seedRepresentation: privateKey, publicKey: nil)
                return Array(key.publicKey.rawRepresentation)
            }
        } catch {
            throw .invalidPrivateKey
        }
    }

    /// Whether `publicKey` parses as a public key of the suite's KEM.
    public func isValidHPKEPublicKey(_ publicKey: [UInt8]) -> Bool {
        switch kem {
        case .x25519:
            return publicKey.count == 32
        case .p256:
            return (try? P256.KeyAgreement.PublicKey(x963Representation: publicKey)) != nil
        case .p384:
            return (try? P384.KeyAgreement.PublicKey(x963Representation: publicKey)) != nil
        case .p521:
            return (try? P521.KeyAgreement.PublicKey(x963Representation: publicKey)) != nil
        case .xWing:
            return publicKey.count == 1216 && (try? XWingMLKEM768X25519.PublicKey(rawRepresentation: publicKey)) != nil
        }
    }

    // MARK: Seal, open, export

    /// `SealBase(pkR, info, aad, pt)`: returns the KEM output and the ciphertext.
    public func hpkeSeal(
        publicKey: [UInt8],
        info: [UInt8],
        aad: [UInt8],
        plaintext: [UInt8]
    ) throws(MLSCryptoError) -> (kemOutput: [UInt8], ciphertext: [UInt8]) {
        try hpkeSeal(publicKey: publicKey, infoHash: hpkeInfoHash(info), aad: aad, plaintext: plaintext)
    }

    /// `SealBase` by swift-crypto's HPKE (the independent implementation our tests compare with).
    func referenceHPKESeal(
        publicKey: [UInt8],
        info: [UInt8],
        aad: [UInt8],
        plaintext: [UInt8]
    ) throws(MLSCryptoError) -> (kemOutput: [UInt8], ciphertext: [UInt8]) {
        var sender = try makeSender(publicKey: publicKey, info: info)
        do {
            let ciphertext = try sender.seal(plaintext, authenticating: aad)
            return (Array(sender.encapsulatedKey), Array(ciphertext))
        } catch {
            throw .encryptionFailed
        }
    }

    /// `OpenBase(enc, skR, info, aad, ct)`.
    public func hpkeOpen(
        privateKey: [UInt8],
        kemOutput: [UInt8],
        info: [UInt8],
        aad: [UInt8],
        ciphertext: [UInt8]
    ) throws(MLSCryptoError) -> [UInt8] {
        var recipient = try makeRecipient(privateKey: privateKey, kemOutput: kemOutput, info: info)
        do {
            return Array(try recipient.open(ciphertext, authenticating: aad))
        } catch {
            throw .decryptionFailed
        }
    }

    /// `SetupBaseS(pkR, info)` followed by `Export(context, length)`.
    public func hpkeExportSender(
        publicKey: [UInt8],
        info: [UInt8],
        exporterContext: [UInt8],
        length: Int
    ) throws(MLSCryptoError) -> (kemOutput: [UInt8], secret: [UInt8]) {
        let sender = try makeSender(publicKey: publicKey, info: info)
        do {
            let secret = try sender.exportSecret(context: exporterContext, outputByteCount: length)
            return (Array(sender.encapsulatedKey), secret.withUnsafeBytes { Array($0) })
        } catch {
            throw .encryptionFailed
        }
    }

    /// `SetupBaseR(enc, skR, info)` followed by `Export(context, length)`.
    public func hpkeExportReceiver(
        privateKey: [UInt8],
        kemOutput: [UInt8],
        info: [UInt8],
        exporterContext: [UInt8],
        length: Int
    ) throws(MLSCryptoError) -> [UInt8] {
        let recipient = try makeRecipient(privateKey: privateKey, kemOutput: kemOutput, info: info)
        do {
            let secret = try recipient.exportSecret(context: exporterContext, outputByteCount: length)
            return secret.withUnsafeBytes { Array($0) }
        } catch {
            throw .decryptionFailed
        }
    }

    private func makeSender(publicKey: [UInt8], info: [UInt8]) throws(MLSCryptoError) -> HPKE.Sender {
        let suite = hpkeSuite
        let infoData = Data(info)
        do {
            switch kem {
            case .x25519:
                guard publicKey.count == 32 else {
                    throw MLSCryptoError.invalidPublicKey
                }
                let key = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: publicKey)
                return try HPKE.Sender(recipientKey: key, ciphersuite: suite, info: infoData)
            case .p256:
                let key = try P256.KeyAgreement.PublicKey(x963Representation: publicKey)
                return try HPKE.Sender(recipientKey: key, ciphersuite: suite, info: infoData)
            case .p384:
                let key = try P384.KeyAgreement.PublicKey(x963Representation: publicKey)
                return try HPKE.Sender(recipientKey: key, ciphersuite: suite, info: infoData)
            case .p521:
                let key = try P521.KeyAgreement.PublicKey(x963Representation: publicKey)
                return try HPKE.Sender(recipientKey: key, ciphersuite: suite, info: infoData)
            case .xWing:
                guard publicKey.count == 1216 else {
                    throw MLSCryptoError.invalidPublicKey
                }
                let key = try XWingMLKEM768X25519.PublicKey(rawRepresentation: publicKey)
                return try HPKE.Sender(recipientKey: key, ciphersuite: suite, info: infoData)
            }
        } catch {
            throw .invalidPublicKey
        }
    }

    private func makeRecipient(
        privateKey: [UInt8],
        kemOutput: [UInt8],
        info: [UInt8]
    ) throws(MLSCryptoError) -> HPKE.Recipient {
        let suite = hpkeSuite
        let infoData = Data(info)
        let enc = Data(kemOutput)
        do {
            switch kem {
            case .x25519:
                guard kemOutput.count == 32 else {
                    throw MLSCryptoError.decryptionFailed
                }
                let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKey)
                return try HPKE.Recipient(privateKey: key, ciphersuite: suite, info: infoData, encapsulatedKey: enc)
            case .p256:
                let key = try P256.KeyAgreement.PrivateKey(
                    rawRepresentation: SignaturePrivateKey.leftPadded(privateKey, 32)
                )
                return try HPKE.Recipient(privateKey: key, ciphersuite: suite, info: infoData, encapsulatedKey: enc)
            case .p384:
                let key = try P384.KeyAgreement.PrivateKey(
                    rawRepresentation: SignaturePrivateKey.leftPadded(privateKey, 48)
                )
                return try HPKE.Recipient(privateKey: key, ciphersuite: suite, info: infoData, encapsulatedKey: enc)
            case .p521:
                let key = try P521.KeyAgreement.PrivateKey(
                    rawRepresentation: SignaturePrivateKey.leftPadded(privateKey, 66)
                )
                return try HPKE.Recipient(privateKey: key, ciphersuite: suite, info: infoData, encapsulatedKey: enc)
            case .xWing:
                guard kemOutput.count == 1120 else {
                    throw MLSCryptoError.decryptionFailed
                }
                let key = try XWingMLKEM768X25519.PrivateKey(seedRepresentation: privateKey, publicKey: nil)
                return try HPKE.Recipient(privateKey: key, ciphersuite: suite, info: infoData, encapsulatedKey: enc)
            }
        } catch {
            throw .decryptionFailed
        }
    }

    // MARK: MLS labeled encryption (RFC 9420 §5.1.3)

    /// `EncryptWithLabel(pk, label, context, plaintext)`.
    public func encryptWithLabel(
        publicKey: [UInt8],
        label: String,
        context: [UInt8],
        plaintext: [UInt8]
    ) throws(MLSCryptoError) -> HPKECiphertext {
        let sealed = try hpkeSeal(
            publicKey: publicKey,
            info: Self.encryptContext(label: label, context: context),
            aad: [],
            plaintext: plaintext
        )
        return HPKECiphertext(kemOutput: sealed.kemOutput, ciphertext: sealed.ciphertext)
    }

    /// `DecryptWithLabel(sk, label, context, kem_output, ciphertext)`.
    public func decryptWithLabel(
        privateKey: [UInt8],
        label: String,
        context: [UInt8],
        ciphertext: HPKECiphertext
    ) throws(MLSCryptoError) -> [UInt8] {
        try hpkeOpen(
            privateKey: privateKey,
            kemOutput: ciphertext.kemOutput,
            info: Self.encryptContext(label: label, context: context),
            aad: [],
            ciphertext: ciphertext.ciphertext
        )
    }

    static func encryptContext(label: String, context: [UInt8]) -> [UInt8] {
        var writer = MLSWriter(capacity: context.count + 32)
        writer.writeOpaque(Array(("MLS 1.0 " + label).utf8))
        writer.writeOpaque(context)
        return writer.bytes
    }

    // MARK: RFC 9180 labeled KDF for DeriveKeyPair

    private var kemSuiteID: [UInt8] {
        Array("KEM".utf8) + [UInt8(kem.identifier >> 8), UInt8(kem.identifier & 0xff)]
    }

    private func kemLabeledExtract(salt: [UInt8], label: String, ikm: [UInt8]) -> [UInt8] {
        let labeled = Array("HPKE-v1".utf8) + kemSuiteID + Array(label.utf8) + ikm
        return Self.hkdfExtract(kem.kdf, salt: salt, ikm: labeled)
    }

    private func kemLabeledExpand(prk: [UInt8], label: String, info: [UInt8], length: Int) -> [UInt8] {
        let labeled =
            [UInt8(length >> 8), UInt8(length & 0xff)] + Array("HPKE-v1".utf8) + kemSuiteID
            + Array(label.utf8) + info
        return Self.hkdfExpand(kem.kdf, prk: prk, info: labeled, length: length)
    }

    static func groupOrder(_ kem: KEMAlgorithm) -> [UInt8] {
        switch kem {
        case .p256:
            return hexBytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
        case .p384:
            return hexBytes(
                "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973"
            )
        case .p521:
            return hexBytes(
                "01ff" + String(repeating: "f", count: 56) + "fffffffa"
                    + "51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409"
            )
        case .x25519, .xWing:
            return []
        }
    }

    private static func hexBytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var high: UInt8?
        for character in hex.utf8 {
            let nibble: UInt8 = character <= 57 ? character - 48 : character - 87
            if let h = high {
                out.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return out
    }
}
