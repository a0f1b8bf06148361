/// A server's public identity: its static X-Wing key (authenticates the handshake)
/// and its ML-DSA-65 key (signs first-contact announcements, later certificates).
/// This pair is what known_hosts pins.
public struct HostPublicKey: Sendable, Equatable {
    public static let keyType = "qnsp-xwing-mldsa65"
    public static let blobSize = HybridKEM.publicKeySize + SignatureScheme.publicKeySize
    public static let keyIDSize = 8

    public let kem: HybridKEM.PublicKey
    public let signing: SignatureScheme.PublicKey

    public init(kem: HybridKEM.PublicKey, signing: SignatureScheme.PublicKey) {
        self.kem = kem
        self.signing = signing
    }

    /// kem (1216) || signing (1952).
    public var blob: [UInt8] { kem.rawRepresentation + signing.rawRepresentation }

    public init(blob: [UInt8]) throws(QNSPCryptoError) {
        guard blob.count == Self.blobSize else {
            throw .invalidKeySize(what: "host public key", expected: Self.blobSize, actual: blob.count)
        }
        kem = try HybridKEM.PublicKey(rawRepresentation: Array(blob[0..<HybridKEM.publicKeySize]))
        signing = try SignatureScheme.PublicKey(rawRepresentation: Array(blob[HybridKEM.publicKeySize...]))
    }

    /// First 8 bytes of SHA-256(blob): lets a server with several host keys pick one.
    public var keyID: [UInt8] { Array(KeyDerivation.sha256(blob).prefix(Self.keyIDSize)) }

    /// `SHA256:<base64>` as OpenSSH prints fingerprints.
    public var fingerprint: String { Fingerprint.sha256(blob) }
}

/// A user's public identity: an ML-DSA-65 key, listed in authorized_keys.
public struct UserPublicKey: Sendable, Equatable, Hashable {
    public static let keyType = "qnsp-mldsa65"
    public let signing: SignatureScheme.PublicKey

    public init(signing: SignatureScheme.PublicKey) { self.signing = signing }
    public init(blob: [UInt8]) throws(QNSPCryptoError) { signing = try SignatureScheme.PublicKey(rawRepresentation: blob) }

    public var blob: [UInt8] { signing.rawRepresentation }
    public var fingerprint: String { Fingerprint.sha256(blob) }
}

/// SHA-256 fingerprints in OpenSSH's notation.
public enum Fingerprint {
    public static func sha256(_ blob: [UInt8]) -> String {
        let b64 = Base64.encode(KeyDerivation.sha256(blob))
        return "SHA256:" + String(b64.prefix(while: { $0 != "=" }))
    }
}
