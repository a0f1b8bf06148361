/// CleartextCredentials (RFC 9807 §4): the server's public key and both identities, each identity
/// defaulting to its party's public key. Its encoding is what the envelope's tag authenticates.
package struct CleartextCredentials: Sendable, Equatable {
    package let serverPublicKey: Ristretto255Element
    package let serverIdentity: [UInt8]
    package let clientIdentity: [UInt8]

    /// CreateCleartextCredentials. Given identities must be 1...65535 bytes.
    package init(
        serverPublicKey: Ristretto255Element,
        clientPublicKey: Ristretto255Element,
        serverIdentity: [UInt8]?,
        clientIdentity: [UInt8]?
    ) throws(OPAQUEError) {
        self.serverPublicKey = serverPublicKey
        self.serverIdentity = try Self.checked(serverIdentity ?? serverPublicKey.bytes, "server identity")
        self.clientIdentity = try Self.checked(clientIdentity ?? clientPublicKey.bytes, "client identity")
    }

    /// server_public_key || I2OSP(len(server_identity), 2) || server_identity ||
    /// I2OSP(len(client_identity), 2) || client_identity.
    package var encoded: [UInt8] {
        serverPublicKey.bytes + Bytes.i2osp2(serverIdentity.count) + serverIdentity
            + Bytes.i2osp2(clientIdentity.count) + clientIdentity
    }

    private static func checked(_ identity: [UInt8], _ what: String) throws(OPAQUEError) -> [UInt8] {
        guard !identity.isEmpty else { throw .invalidIdentity("\(what) is empty") }
        guard identity.count <= 0xFFFF else { throw .invalidIdentity("\(what) longer than 65535 bytes") }
        return identity
    }
}
