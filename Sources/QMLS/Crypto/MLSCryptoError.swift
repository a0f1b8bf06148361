// MARK: - Crypto errors

/// A cryptographic operation failed or was given unusable key material.
public enum MLSCryptoError: Error, Equatable, Sendable {
    /// QMLS does not implement this cipher suite.
    case unsupportedCipherSuite(UInt16)
    /// A public key does not parse for the suite's KEM or signature scheme.
    case invalidPublicKey
    /// A private key does not parse for the suite's KEM or signature scheme.
    case invalidPrivateKey
    /// AEAD or HPKE decryption failed (wrong key, or the ciphertext was altered).
    case decryptionFailed
    /// AEAD or HPKE encryption failed.
    case encryptionFailed
    /// The signer could not produce a signature.
    case signingFailed
    /// DeriveKeyPair found no valid scalar (RFC 9180 §7.1.3).
    case deriveKeyPairFailed
}
