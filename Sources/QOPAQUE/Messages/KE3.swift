/// KE3 (RFC 9807 §6.1): client_mac[Nm], 64 bytes, the client's proof that it knew the password.
package struct KE3: Sendable, Equatable {
    package static let size = 64

    package let clientMAC: [UInt8]

    package init(clientMAC: [UInt8]) {
        precondition(clientMAC.count == Self.size, "client MAC size")
        self.clientMAC = clientMAC
    }

    /// Strict decoder: exactly 64 bytes.
    package init(bytes input: some Collection<UInt8>) throws(OPAQUEError) {
        let raw = Array(input)
        guard raw.count == Self.size else { throw .invalidLength(.ke3, expected: Self.size, actual: raw.count) }
        clientMAC = raw
    }

    package var bytes: [UInt8] { clientMAC }
}
