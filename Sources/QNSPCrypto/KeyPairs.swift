/// A user's ML-DSA-65 key pair with its comment.
public struct UserKeyPair: Sendable {
    public let signingKey: SignatureScheme.PrivateKey
    public var comment: String

    public init(signingKey: SignatureScheme.PrivateKey, comment: String = "") {
        self.signingKey = signingKey
        self.comment = comment
    }

    public static func generate(comment: String = "", using random: SecureRandom = SecureRandom()) throws(QNSPCryptoError) -> UserKeyPair {
        UserKeyPair(signingKey: try .generate(using: random), comment: comment)
    }

    public var publicKey: UserPublicKey { UserPublicKey(signing: signingKey.publicKey) }
}

/// A server's key pair: static X-Wing decapsulation key and ML-DSA-65 signing key.
public struct HostKeyPair: Sendable {
    public let kemKey: HybridKEM.PrivateKey
    public let signingKey: SignatureScheme.PrivateKey
    public var comment: String

    public init(kemKey: HybridKEM.PrivateKey, signingKey: SignatureScheme.PrivateKey, comment: String = "") {
        self.kemKey = kemKey
        self.signingKey = signingKey
        self.comment = comment
    }

    public static func generate(comment: String = "", using random: SecureRandom = SecureRandom()) throws(QNSPCryptoError) -> HostKeyPair {
        HostKeyPair(kemKey: try .generate(using: random), signingKey: try .generate(using: random), comment: comment)
    }

    public var publicKey: HostPublicKey { HostPublicKey(kem: kemKey.publicKey, signing: signingKey.publicKey) }
}
