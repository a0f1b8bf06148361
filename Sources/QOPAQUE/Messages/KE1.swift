/// KE1 (RFC 9807 §6.1): CredentialRequest || AuthRequest, where AuthRequest = client_nonce[Nn] ||
/// client_public_keyshare[Npk]; 96 bytes, the client's first login message.
package struct KE1: Sendable, Equatable {
    package static let size = 96

    package let credentialRequest: CredentialRequest
    package let clientNonce: [UInt8]
    package let clientPublicKeyshare: Ristretto255Element

    package init(credentialRequest: CredentialRequest, clientNonce: [UInt8], clientPublicKeyshare: Ristretto255Element)
    {
        precondition(clientNonce.count == 32, "client nonce size")
        self.credentialRequest = credentialRequest
        self.clientNonce = clientNonce
        self.clientPublicKeyshare = clientPublicKeyshare
    }

    /// Strict decoder: exactly 96 bytes, two valid non-identity elements.
    package init(bytes input: some Collection<UInt8>) throws(OPAQUEError) {
        let raw = Array(input)
        guard raw.count == Self.size else { throw .invalidLength(.ke1, expected: Self.size, actual: raw.count) }
        credentialRequest = try CredentialRequest(bytes: raw[0..<32])
        clientNonce = Array(raw[32..<64])
        clientPublicKeyshare = try Ristretto255Element(validating: raw[64..<96], field: .clientPublicKeyshare)
    }

    package var bytes: [UInt8] { credentialRequest.bytes + clientNonce + clientPublicKeyshare.bytes }
}
