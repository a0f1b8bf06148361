/// CredentialResponse (RFC 9807 §6.3.1): evaluated_message[Noe] || masking_nonce[Nn] ||
/// masked_response[Npk + Nn + Nm], 192 bytes; the first part of KE2.
package struct CredentialResponse: Sendable, Equatable {
    package static let size = 192
    /// Npk + Nn + Nm: the masked server public key and envelope.
    package static let maskedResponseSize = 128

    package let evaluatedMessage: Ristretto255Element
    package let maskingNonce: [UInt8]
    package let maskedResponse: [UInt8]

    package init(evaluatedMessage: Ristretto255Element, maskingNonce: [UInt8], maskedResponse: [UInt8]) {
        precondition(maskingNonce.count == 32 && maskedResponse.count == Self.maskedResponseSize, "field sizes")
        self.evaluatedMessage = evaluatedMessage
        self.maskingNonce = maskingNonce
        self.maskedResponse = maskedResponse
    }

    /// Strict decoder: exactly 192 bytes, a valid non-identity evaluated element. The masked part can
    /// only be checked after unmasking (RecoverCredentials).
    package init(bytes input: some Collection<UInt8>) throws(OPAQUEError) {
        let raw = Array(input)
        guard raw.count == Self.size else {
            throw .invalidLength(.credentialResponse, expected: Self.size, actual: raw.count)
        }
        evaluatedMessage = try Ristretto255Element(validating: raw[0..<32], field: .evaluatedMessage)
        maskingNonce = Array(raw[32..<64])
        maskedResponse = Array(raw[64..<192])
    }

    package var bytes: [UInt8] { evaluatedMessage.bytes + maskingNonce + maskedResponse }
}
