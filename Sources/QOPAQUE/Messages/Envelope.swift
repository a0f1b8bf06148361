/// The client's Envelope (RFC 9807 §4.1.1): envelope_nonce[Nn] || auth_tag[Nm], 96 bytes. It holds no
/// key material: the client's key pair is re-derived from the randomized password and the nonce.
package struct Envelope: Sendable, Equatable {
    /// Nn + Nm.
    package static let size = 96

    package let nonce: [UInt8]
    package let authTag: [UInt8]

    /// Strict decoder: exactly 96 bytes.
    package init(bytes input: some Collection<UInt8>) throws(OPAQUEError) {
        let raw = Array(input)
        guard raw.count == Self.size else { throw .invalidLength(.envelope, expected: Self.size, actual: raw.count) }
        nonce = Array(raw[0..<32])
        authTag = Array(raw[32..<96])
    }

    init(nonce: [UInt8], authTag: [UInt8]) {
        precondition(nonce.count == 32 && authTag.count == 64, "envelope field sizes")
        self.nonce = nonce
        self.authTag = authTag
    }

    /// The all-zero envelope of a fake record (RFC 9807 §6.3.2.2).
    package static let zero = Envelope(
        nonce: [UInt8](repeating: 0, count: 32),
        authTag: [UInt8](repeating: 0, count: 64)
    )

    package var bytes: [UInt8] { nonce + authTag }

    // MARK: - Store and Recover (RFC 9807 §4.1.2, §4.1.3)

    /// What Store produces besides the envelope.
    package struct Stored {
        package let envelope: Envelope
        package let clientPublicKey: Ristretto255Element
        package let maskingKey: SecretBytes
        package let exportKey: SecretBytes
        let authKey: SecretBytes
    }

    /// What Recover produces.
    package struct Recovered {
        package let clientPrivateKey: Ristretto255Scalar
        package let clientPublicKey: Ristretto255Element
        package let credentials: CleartextCredentials
        package let exportKey: SecretBytes
    }

    /// Store(randomized_password, server_public_key, server_identity, client_identity).
    static func store(
        randomizedPassword: SecretBytes,
        serverPublicKey: Ristretto255Element,
        serverIdentity: [UInt8]?,
        clientIdentity: [UInt8]?,
        nonce: [UInt8]
    ) throws(OPAQUEError) -> Stored {
        precondition(nonce.count == OPAQUEConfiguration.nonceSize, "envelope nonce size")
        let maskingKey = SHA512KDF.expand(prk: randomizedPassword, info: [Bytes.ascii("MaskingKey")], length: 64)
        let keys = try derive(randomizedPassword: randomizedPassword, nonce: nonce)
        let credentials = try CleartextCredentials(
            serverPublicKey: serverPublicKey,
            clientPublicKey: keys.publicKey,
            serverIdentity: serverIdentity,
            clientIdentity: clientIdentity
        )
        let tag = SHA512KDF.mac(key: keys.authKey, [nonce, credentials.encoded])
        return Stored(
            envelope: Envelope(nonce: nonce, authTag: tag.copiedBytes()),
            clientPublicKey: keys.publicKey,
            maskingKey: maskingKey,
            exportKey: keys.exportKey,
            authKey: keys.authKey
        )
    }

    /// Recover(randomized_password, server_public_key, envelope, server_identity, client_identity).
    /// The tag is compared in constant time; on mismatch nothing derived survives the call.
    func recover(
        randomizedPassword: SecretBytes,
        serverPublicKey: Ristretto255Element,
        serverIdentity: [UInt8]?,
        clientIdentity: [UInt8]?
    ) throws(OPAQUEError) -> Recovered {
        let keys = try Self.derive(randomizedPassword: randomizedPassword, nonce: nonce)
        let credentials = try CleartextCredentials(
            serverPublicKey: serverPublicKey,
            clientPublicKey: keys.publicKey,
            serverIdentity: serverIdentity,
            clientIdentity: clientIdentity
        )
        let expected = SHA512KDF.mac(key: keys.authKey, [nonce, credentials.encoded])
        guard expected.constantTimeEquals(authTag) else { throw .envelopeRecoveryFailed }
        return Recovered(
            clientPrivateKey: keys.privateKey,
            clientPublicKey: keys.publicKey,
            credentials: credentials,
            exportKey: keys.exportKey
        )
    }

    private struct DerivedKeys {
        let authKey: SecretBytes
        let exportKey: SecretBytes
        let privateKey: Ristretto255Scalar
        let publicKey: Ristretto255Element
    }

    private static func derive(randomizedPassword: SecretBytes, nonce: [UInt8]) throws(OPAQUEError) -> DerivedKeys {
        let authKey = SHA512KDF.expand(prk: randomizedPassword, info: [nonce, Bytes.ascii("AuthKey")], length: 64)
        let exportKey = SHA512KDF.expand(prk: randomizedPassword, info: [nonce, Bytes.ascii("ExportKey")], length: 64)
        let seed = SHA512KDF.expand(prk: randomizedPassword, info: [nonce, Bytes.ascii("PrivateKey")], length: 32)
        let pair = try DiffieHellmanKeyPair.derive(seed: seed)
        return DerivedKeys(
            authKey: authKey,
            exportKey: exportKey,
            privateKey: pair.privateKey,
            publicKey: pair.publicKey
        )
    }
}
