/// A 3DH key pair on ristretto255 (RFC 9807 §6.4.1): DeriveDiffieHellmanKeyPair(seed) =
/// DeriveKeyPair(seed, "OPAQUE-DeriveDiffieHellmanKeyPair").
package struct DiffieHellmanKeyPair: Sendable {
    package let privateKey: Ristretto255Scalar
    package let publicKey: Ristretto255Element

    /// DeriveDiffieHellmanKeyPair(seed), seed of Nseed = 32 bytes.
    package static func derive(seed: SecretBytes) throws(OPAQUEError) -> DiffieHellmanKeyPair {
        let pair = try OPRF.deriveKeyPair(seed: seed, info: Bytes.ascii("OPAQUE-DeriveDiffieHellmanKeyPair"))
        return DiffieHellmanKeyPair(privateKey: pair.privateKey, publicKey: pair.publicKey)
    }

    /// A pair from a fresh random seed (ephemeral key shares, new server keys).
    package static func generate() throws(OPAQUEError) -> DiffieHellmanKeyPair {
        try derive(seed: SecretBytes.random(count: OPAQUEConfiguration.nonceSize))
    }

    /// The pair of a given private key.
    package init(privateKey: Ristretto255Scalar) throws(OPAQUEError) {
        self.privateKey = privateKey
        self.publicKey = try Ristretto255Element.generatorMultiple(privateKey)
    }

    private init(privateKey: Ristretto255Scalar, publicKey: Ristretto255Element) {
        self.privateKey = privateKey
        self.publicKey = publicKey
    }
}
