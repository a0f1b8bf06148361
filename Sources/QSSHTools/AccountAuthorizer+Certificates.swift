import Foundation
import QNSPCrypto
import QSSHSession

extension AccountAuthorizer {
    /// The account `user` logs in to with a user certificate (docs/protocol.md §7.7): signed by
    /// a trusted CA, inside its window at `now`, listing `user` as a principal, and with options
    /// this server enforces. `peer` is the client's address (text) for `source-address`.
    ///
    /// Options force-command, no-pty and no-port-forwarding are not enforced by this qsshd yet:
    /// a certificate carrying one is refused (never accepted with fewer restrictions than it says).
    package func authorize(
        user: String, key: UserPublicKey, certificate: QNSPCertificate, trustedCAs: [SignatureScheme.PublicKey], peer: String, now: UInt64
    ) -> Result<SessionUser, AuthorizationRefusal> {
        let id = "certificate \"\(PrintableText.escapedKeepingLines(certificate.keyID))\" serial \(certificate.serial)"
        guard !trustedCAs.isEmpty else { return .failure(.init("\(id): no --trusted-user-ca-keys configured")) }
        do {
            try certificate.verify(trustedCAs: trustedCAs, kind: .user, principal: user, now: now)
        } catch {
            return .failure(.init("\(id): \(error)"))
        }
        for option in certificate.options {
            switch option.name {
            case QNSPCertificate.Option.sourceAddress:
                guard let address = Self.addressBytes(peer) else { return .failure(.init("\(id): client address '\(peer)' unknown")) }
                let blocks = option.value.split(separator: ",").compactMap { CertificateSourceAddress.parse(String($0)) }
                guard blocks.contains(where: { $0.contains(address) }) else {
                    return .failure(.init("\(id): source-address \(option.value) does not include \(peer)"))
                }
            case QNSPCertificate.Option.noAgentForwarding:
                continue  // qsshd does not forward agents
            default:
                return .failure(.init("\(id): option \(option.name) is not enforced by this qsshd; refusing the certificate"))
            }
        }
        return lookupAccount(user)
    }

    /// Address bytes of a textual IPv4 or IPv6 address (an IPv4-mapped IPv6 address as IPv4).
    static func addressBytes(_ text: String) -> [UInt8]? {
        var host = text
        if host.hasPrefix("::ffff:"), host.contains(".") { host = String(host.dropFirst(7)) }
        return CertificateSourceAddress.parse(host).map(\.address)
    }
}

/// The CA keys of `--trusted-user-ca-keys`: public key lines of ML-DSA-65 keys.
package enum TrustedCAKeys {
    package static func load(path: String) throws -> [SignatureScheme.PublicKey] {
        let keys = AuthorizedKeys(text: try KeyFileIO.readText(path: path))
        if let problem = keys.problems.first { throw ToolError("\(path):\(problem.line): \(problem.reason)") }
        guard !keys.keys.isEmpty else { throw ToolError("\(path): no CA keys") }
        return keys.keys.map(\.signing)
    }
}
