import Crypto
import Foundation

// MARK: - Signature private key

/// A member's signing key, parsed once for its cipher suite's signature scheme.
///
/// `rawRepresentation` is the serialized form used by the test vectors and by group state:
/// the Ed25519 seed, the ECDSA scalar (big-endian), or the ML-DSA-65 seed.
public struct SignaturePrivateKey: Sendable {
    public let rawRepresentation: [UInt8]
    public let publicKey: [UInt8]
    let signer: Signer

    enum Signer: Sendable {
        case ed25519(Curve25519.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
        case p521(P521.Signing.PrivateKey)
        case mlDSA65(MLDSA65.PrivateKey)
    }

    init(rawRepresentation: [UInt8], algorithm: SignatureAlgorithm) throws(MLSCryptoError) {
        self.rawRepresentation = rawRepresentation
        do {
            switch algorithm {
            case .ed25519:
                let key = try Curve25519.Signing.PrivateKey(rawRepresentation: rawRepresentation)
                signer = .ed25519(key)
                publicKey = Array(key.publicKey.rawRepresentation)
            case .ecdsaP256:
                let key = try P256.Signing.PrivateKey(rawRepresentation: Self.leftPadded(rawRepresentation, 32))
                signer = .p256(key)
                publicKey = Array(key.publicKey.x963Representation)
            case .ecdsaP384:
                let key = try P384.Signing.PrivateKey(rawRepresentation: Self.leftPadded(rawRepresentation, 48))
                signer = .p384(key)
                publicKey = Array(key.publicKey.x963Representation)
            case .ecdsaP521:
                let key = try P521.Signing.PrivateKey(rawRepresentation: Self.leftPadded(rawRepresentation, 66))
                signer = .p521(key)
                publicKey = Array(key.publicKey.x963Representation)
            case .mlDSA65:
                guard rawRepresentation.count == 32 else {
                    throw MLSCryptoError.invalidPrivateKey
                }
                let key = try MLDSA65.PrivateKey(seedRepresentation: rawRepresentation, publicKey: nil)
                signer = .mlDSA65(key)
                publicKey = Array(key.publicKey.rawRepresentation)
            }
        } catch {
            throw .invalidPrivateKey
        }
    }

    /// ECDSA scalars are big-endian integers; some encoders drop leading zero bytes.
    static func leftPadded(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        bytes.count >= length ? bytes : [UInt8](repeating: 0, count: length - bytes.count) + bytes
    }

    func sign(_ message: [UInt8]) throws(MLSCryptoError) -> [UInt8] {
        do {
            switch signer {
            case .ed25519(let key):
                return Array(try key.signature(for: message))
            case .p256(let key):
                return Array(try key.signature(for: message).derRepresentation)
            case .p384(let key):
                return Array(try key.signature(for: message).derRepresentation)
            case .p521(let key):
                return Array(try key.signature(for: message).derRepresentation)
            case .mlDSA65(let key):
                return Array(try key.signature(for: message))
            }
        } catch {
            throw .signingFailed
        }
    }
}

extension CipherSuiteProvider {
    // MARK: Signature keys

    /// Parses a serialized signature private key for this suite.
    public func signaturePrivateKey(_ raw: [UInt8]) throws(MLSCryptoError) -> SignaturePrivateKey {
        try SignaturePrivateKey(rawRepresentation: raw, algorithm: signature)
    }

    /// A fresh random signing key for this suite.
    public func generateSignatureKey() throws(MLSCryptoError) -> SignaturePrivateKey {
        switch signature {
        case .ed25519:
            return try signaturePrivateKey(Array(Curve25519.Signing.PrivateKey().rawRepresentation))
        case .ecdsaP256:
            return try signaturePrivateKey(Array(P256.Signing.PrivateKey().rawRepresentation))
        case .ecdsaP384:
            return try signaturePrivateKey(Array(P384.Signing.PrivateKey().rawRepresentation))
        case .ecdsaP521:
            return try signaturePrivateKey(Array(P521.Signing.PrivateKey().rawRepresentation))
        case .mlDSA65:
            return try signaturePrivateKey(randomBytes(32))
        }
    }

    // MARK: Sign and verify

    /// `Signature.Verify(pk, message, signature)`; false for unparsable keys or signatures.
    public func verify(publicKey: [UInt8], message: [UInt8], signature sig: [UInt8]) -> Bool {
        switch signature {
        case .ed25519:
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else {
                return false
            }
            return key.isValidSignature(sig, for: message)
        case .ecdsaP256:
            guard let key = try? P256.Signing.PublicKey(x963Representation: publicKey),
                let parsed = try? P256.Signing.ECDSASignature(derRepresentation: sig)
            else {
                return false
            }
            return key.isValidSignature(parsed, for: message)
        case .ecdsaP384:
            guard let key = try? P384.Signing.PublicKey(x963Representation: publicKey),
                let parsed = try? P384.Signing.ECDSASignature(derRepresentation: sig)
            else {
                return false
            }
            return key.isValidSignature(parsed, for: message)
        case .ecdsaP521:
            guard let key = try? P521.Signing.PublicKey(x963Representation: publicKey),
                let parsed = try? P521.Signing.ECDSASignature(derRepresentation: sig)
            else {
                return false
            }
            return key.isValidSignature(parsed, for: message)
        case .mlDSA65:
            guard publicKey.count == 1952, let key = try? MLDSA65.PublicKey(rawRepresentation: publicKey) else {
                return false
            }
            return key.isValidSignature(sig, for: message)
        }
    }

    /// Whether `publicKey` parses as a verification key of the suite's signature scheme.
    public func isValidSignaturePublicKey(_ publicKey: [UInt8]) -> Bool {
        switch signature {
        case .ed25519:
            return publicKey.count == 32
        case .ecdsaP256:
            return (try? P256.Signing.PublicKey(x963Representation: publicKey)) != nil
        case .ecdsaP384:
            return (try? P384.Signing.PublicKey(x963Representation: publicKey)) != nil
        case .ecdsaP521:
            return (try? P521.Signing.PublicKey(x963Representation: publicKey)) != nil
        case .mlDSA65:
            return publicKey.count == 1952 && (try? MLDSA65.PublicKey(rawRepresentation: publicKey)) != nil
        }
    }

    // MARK: MLS labeled signatures (RFC 9420 §5.1.2)

    /// `SignWithLabel(key, label, content)`.
    public func signWithLabel(
        _ key: SignaturePrivateKey,
        label: String,
        content: [UInt8]
    ) throws(MLSCryptoError) -> [UInt8] {
        try key.sign(Self.signContent(label: label, content: content))
    }

    /// `VerifyWithLabel(pk, label, content, signature)`.
    public func verifyWithLabel(
        publicKey: [UInt8],
        label: String,
        content: [UInt8],
        signature sig: [UInt8]
    ) -> Bool {
        verify(publicKey: publicKey, message: Self.signContent(label: label, content: content), signature: sig)
    }

    static func signContent(label: String, content: [UInt8]) -> [UInt8] {
        var writer = MLSWriter(capacity: content.count + 32)
        writer.writeOpaque(Array(("MLS 1.0 " + label).utf8))
        writer.writeOpaque(content)
        return writer.bytes
    }
}
