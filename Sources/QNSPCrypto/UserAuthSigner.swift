/// Makes a user's ClientAuth signature: a key pair held in this process, or an agent that
/// holds the key (so the client never reads the private key file).
///
/// `sign` is called synchronously from the handshake; an agent signer does one round trip to
/// a local socket there.
public protocol UserAuthSigner: Sendable {
    var publicKey: UserPublicKey { get }
    /// Signs `message` under the ML-DSA-65 context string `context`.
    func sign(_ message: [UInt8], context: [UInt8]) throws(QNSPCryptoError) -> [UInt8]
}

extension UserKeyPair: UserAuthSigner {
    public func sign(_ message: [UInt8], context: [UInt8]) throws(QNSPCryptoError) -> [UInt8] {
        try signingKey.sign(message, context: context)
    }
}
