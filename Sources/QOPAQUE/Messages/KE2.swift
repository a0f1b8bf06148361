/// KE2 (RFC 9807 §6.1): CredentialResponse || AuthResponse, where AuthResponse = server_nonce[Nn] ||
/// server_public_keyshare[Npk] || server_mac[Nm]; 320 bytes, the server's login response.
package struct KE2: Sendable, Equatable {
    package static let size = 320

    package let credentialResponse: CredentialResponse
    package let serverNonce: [UInt8]
    package let serverPublicKeyshare: Ristretto255Element
    package let serverMAC: [UInt8]

    package init(
        credentialResponse: CredentialResponse,
        serverNonce: [UInt8],
        serverPublicKeyshare: Ristretto255Element,
        serverMAC: [UInt8]
    ) {
        precondition(serverNonce.count == 32 && serverMAC.count == 64, "field sizes")
        self.credentialResponse = credentialResponse
        self.serverNonce = serverNonce
        self.serverPublicKeyshare = serverPublicKeyshare
        self.serverMAC = serverMAC
    }

    /// Strict decoder: exactly 320 bytes, valid non-identity evaluated element and key share.
    package init(bytes input: some Collection<UInt8>) throws(OPAQUEError) {
        let raw = Array(input)
        guard raw.count == Self.size else { throw .invalidLength(.ke2, expected: Self.size, actual: raw.count) }
        credentialResponse = try CredentialResponse(bytes: raw[0..<192])
        serverNonce = Array(raw[192..<224])
        serverPublicKeyshare = try Ristretto255Element(validating: raw[224..<256], field: .serverPublicKeyshare)
        serverMAC = Array(raw[256..<320])
    }

    package var bytes: [UInt8] {
        credentialResponse.bytes + serverNonce + serverPublicKeyshare.bytes + serverMAC
    }
}
