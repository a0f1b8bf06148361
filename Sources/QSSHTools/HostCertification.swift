import QNSPCrypto

/// The verdict on a first-contact host under a known_hosts `@cert-authority` line
/// (docs/protocol.md §7.11): accepted with the certificate that vouched for it, or refused
/// with the reason shown to the user.
public enum HostCertification: Sendable {
    case accepted(QNSPCertificate)
    case refused(String)

    /// Checks the announced `key` and `certificate` (nil when the server sent none) against the
    /// CA keys of the covering lines for `principal` (the host name the user connects to).
    public static func check(
        key: HostPublicKey, certificate: QNSPCertificate?, authorities: [KnownHosts.Authority], principal: String,
        revokedLine: Int?, revokedCA: ([UInt8]) -> Int?, now: UInt64
    ) -> HostCertification {
        if let revokedLine { return .refused("its host key is marked @revoked (line \(revokedLine))") }
        guard let certificate else {
            return .refused("it presented no host certificate (host key \(key.fingerprint))")
        }
        if let line = revokedCA(certificate.caKey.rawRepresentation) {
            return .refused("its certificate's CA is marked @revoked (line \(line))")
        }
        do {
            try certificate.verify(trustedCAs: authorities.map(\.key.signing), kind: .host, principal: principal, now: now)
        } catch {
            return .refused("its host certificate '\(certificate.keyID)' serial \(certificate.serial) is refused: \(error)")
        }
        return .accepted(certificate)
    }
}
