/// An OPAQUE-3DH configuration (RFC 9807 §7): the suite is fixed — OPRF ristretto255-SHA512, KDF
/// HKDF-SHA-512, MAC HMAC-SHA-512, Hash SHA-512, Group ristretto255 — and the two choices left are
/// the KSF and the context string bound into every transcript. Client and server must agree on both;
/// a mismatch does not downgrade anything, it makes every login fail.
package struct OPAQUEConfiguration: Sendable, Equatable {
    /// Nn = Nseed = 32: nonce and seed sizes.
    package static let nonceSize = 32
    /// Nh = Nx = Nm = 64.
    package static let hashSize = 64

    /// The context of the 3DH preamble (at most 65535 bytes; may be empty).
    package let context: [UInt8]
    /// The key stretching function (client side only; the server never runs it).
    package let keyStretching: KeyStretching

    /// Validates the context length.
    package init(context: [UInt8], keyStretching: KeyStretching) throws(OPAQUEError) {
        guard context.count <= 0xFFFF else { throw .invalidIdentity("context longer than 65535 bytes") }
        self.context = context
        self.keyStretching = keyStretching
    }

    private init(constant context: [UInt8], _ keyStretching: KeyStretching) {
        self.context = context
        self.keyStretching = keyStretching
    }

    /// qpq's configuration: context "qpq/1 OPAQUE-3DH ristretto255-SHA512 Argon2id" and
    /// ``Argon2idParameters/qpqDefault``.
    package static let qpqDefault = OPAQUEConfiguration(
        constant: Bytes.ascii("qpq/1 OPAQUE-3DH ristretto255-SHA512 Argon2id"),
        .argon2id(.qpqDefault)
    )

    /// opaque-ke 4's defaults with `Argon2::default()` as the KSF: empty context, m = 19 MiB, t = 2.
    package static let opaqueKeDefault = OPAQUEConfiguration(constant: [], .argon2id(.opaqueKeDefault))
}
