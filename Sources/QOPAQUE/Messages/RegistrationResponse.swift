/// RegistrationResponse (RFC 9807 §5.1): evaluated_message[Noe] || server_public_key[Npk], 64 bytes,
/// server to client.
package struct RegistrationResponse: Sendable, Equatable {
    package static let size = 64

    package let evaluatedMessage: Ristretto255Element
    package let serverPublicKey: Ristretto255Element

    package init(evaluatedMessage: Ristretto255Element, serverPublicKey: Ristretto255Element) {
        self.evaluatedMessage = evaluatedMessage
        self.serverPublicKey = serverPublicKey
    }

    /// Strict decoder: exactly 64 bytes, two valid non-identity elements.
    package init(bytes input: some Collection<UInt8>) throws(OPAQUEError) {
        let raw = Array(input)
        guard raw.count == Self.size else {
            throw .invalidLength(.registrationResponse, expected: Self.size, actual: raw.count)
        }
        evaluatedMessage = try Ristretto255Element(validating: raw[0..<32], field: .evaluatedMessage)
        serverPublicKey = try Ristretto255Element(validating: raw[32..<64], field: .serverPublicKey)
    }

    package var bytes: [UInt8] { evaluatedMessage.bytes + serverPublicKey.bytes }
}
