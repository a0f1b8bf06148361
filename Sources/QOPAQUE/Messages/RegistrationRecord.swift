/// RegistrationRecord (RFC 9807 §5.1): client_public_key[Npk] || masking_key[Nh] || envelope[Nn + Nm],
/// 192 bytes, the client's upload and what the server stores per account. Nothing in it lets the server
/// (or a thief of its database) test a password without also holding the server's OPRF seed.
package struct RegistrationRecord: Sendable, Equatable {
    package static let size = 192

    package let clientPublicKey: Ristretto255Element
    package let maskingKey: [UInt8]
    package let envelope: Envelope

    package init(clientPublicKey: Ristretto255Element, maskingKey: [UInt8], envelope: Envelope) {
        precondition(maskingKey.count == 64, "masking key size")
        self.clientPublicKey = clientPublicKey
        self.maskingKey = maskingKey
        self.envelope = envelope
    }

    /// Strict decoder: exactly 192 bytes, a valid non-identity client public key.
    package init(bytes input: some Collection<UInt8>) throws(OPAQUEError) {
        let raw = Array(input)
        guard raw.count == Self.size else {
            throw .invalidLength(.registrationRecord, expected: Self.size, actual: raw.count)
        }
        clientPublicKey = try Ristretto255Element(validating: raw[0..<32], field: .clientPublicKey)
        maskingKey = Array(raw[32..<96])
        envelope = try Envelope(bytes: raw[96..<192])
    }

    package var bytes: [UInt8] { clientPublicKey.bytes + maskingKey + envelope.bytes }
}
