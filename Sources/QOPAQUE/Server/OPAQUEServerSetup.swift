/// The server's long-term OPAQUE secrets (RFC 9807 §3.1 "Setup"): the OPRF seed every account's OPRF key
/// is derived from, the server's 3DH key pair, and the seed of the fake records answered for unknown
/// users (``OPAQUEServer/fakeRecord(credentialIdentifier:)``). Persist it (``serialized``, 0600) and keep it:
/// a new OPRF seed or key pair invalidates every registration.
package struct OPAQUEServerSetup: Sendable {
    /// Serialization: version 0x01 || oprf_seed[64] || server_private_key[32] || fake_record_seed[64].
    package static let serializedSize = 161
    private static let version: UInt8 = 1

    /// oprf_seed (Nh bytes).
    package let oprfSeed: SecretBytes
    /// The server's AKE key pair.
    package let keyPair: DiffieHellmanKeyPair
    /// The seed of the fake records (Nh bytes), independent of the OPRF seed.
    package let fakeRecordSeed: SecretBytes

    /// server_public_key.
    package var publicKey: Ristretto255Element { keyPair.publicKey }

    /// A new setup from the CSPRNG.
    package static func generate() throws(OPAQUEError) -> OPAQUEServerSetup {
        try OPAQUEServerSetup(
            oprfSeed: SecretBytes.random(count: 64),
            keyPair: DiffieHellmanKeyPair.generate(),
            fakeRecordSeed: SecretBytes.random(count: 64)
        )
    }

    /// A setup from its parts (seeds of 64 bytes).
    package init(oprfSeed: SecretBytes, keyPair: DiffieHellmanKeyPair, fakeRecordSeed: SecretBytes) throws(OPAQUEError)
    {
        guard oprfSeed.count == 64 else { throw .invalidServerSetup("oprf_seed must be 64 bytes") }
        guard fakeRecordSeed.count == 64 else { throw .invalidServerSetup("the fake-record seed must be 64 bytes") }
        self.oprfSeed = oprfSeed
        self.keyPair = keyPair
        self.fakeRecordSeed = fakeRecordSeed
    }

    /// Reads ``serialized``.
    package init(serialized input: some Collection<UInt8>) throws(OPAQUEError) {
        let raw = SecretBytes(copying: input)
        guard raw.count == Self.serializedSize else {
            throw .invalidServerSetup("expected \(Self.serializedSize) bytes, got \(raw.count)")
        }
        let parts = raw.withUnsafeBytes { bytes in
            (
                version: bytes[0],
                oprfSeed: SecretBytes(copying: UnsafeRawBufferPointer(rebasing: bytes[1..<65])),
                privateKey: SecretBytes(copying: UnsafeRawBufferPointer(rebasing: bytes[65..<97])),
                fakeSeed: SecretBytes(copying: UnsafeRawBufferPointer(rebasing: bytes[97..<161]))
            )
        }
        guard parts.version == Self.version else { throw .invalidServerSetup("unknown version \(parts.version)") }
        let scalar: Ristretto255Scalar
        do {
            scalar = try Ristretto255Scalar(canonical: parts.privateKey.copiedBytes())
        } catch {
            throw .invalidServerSetup("server private key: \(error)")
        }
        try self.init(
            oprfSeed: parts.oprfSeed,
            keyPair: DiffieHellmanKeyPair(privateKey: scalar),
            fakeRecordSeed: parts.fakeSeed
        )
    }

    /// The secret serialization (write it 0600).
    package var serialized: SecretBytes {
        SecretBytes(concatenating: [[Self.version], oprfSeed, keyPair.privateKey, fakeRecordSeed])
    }
}
