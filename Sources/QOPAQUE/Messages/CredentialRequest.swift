/// CredentialRequest (RFC 9807 §6.3.1): blinded_message[Noe], 32 bytes; the first part of KE1.
package struct CredentialRequest: Sendable, Equatable {
    package static let size = 32

    package let blindedMessage: Ristretto255Element

    package init(blindedMessage: Ristretto255Element) {
        self.blindedMessage = blindedMessage
    }

    /// Strict decoder: exactly 32 bytes, a valid non-identity element.
    package init(bytes input: some Collection<UInt8>) throws(OPAQUEError) {
        let raw = Array(input)
        guard raw.count == Self.size else {
            throw .invalidLength(.credentialRequest, expected: Self.size, actual: raw.count)
        }
        blindedMessage = try Ristretto255Element(validating: raw, field: .blindedMessage)
    }

    package var bytes: [UInt8] { blindedMessage.bytes }
}
