import Foundation
import QNSPCrypto
import QSSHSession

extension AccountAuthorizer {
    /// The account `user` logs in to with a user certificate (docs/protocol.md §7.7): signed by
    /// a trusted CA, inside its window at `now`, listing `user` as a principal, and with options
    /// this server enforces. `peer` is the client's address (text) for `source-address`.
    ///
    /// Options force-command, no-pty, no-port-forwarding and no-agent-forwarding become the account's
    /// ``SessionRestrictions``; an option this server does not know refuses the certificate.
    ///
    /// With `revokedKeysPath`, a revoked key, CA, serial or key id is refused (the file is read
    /// for every login; an unreadable one refuses). With `principalsPattern` (%h, %u), the
    /// certificate must name one of the principals listed in that file instead of the user name.
    package func authorize(
        user: String,
        key: UserPublicKey,
        certificate: QNSPCertificate,
        trustedCAs: [SignatureScheme.PublicKey],
        peer: String,
        now: UInt64,
        revokedKeysPath: String? = nil,
        principalsPattern: String? = nil
    ) -> Result<SessionUser, AuthorizationRefusal> {
        let id = "certificate \"\(PrintableText.escapedKeepingLines(certificate.keyID))\" serial \(certificate.serial)"
        guard !trustedCAs.isEmpty else { return .failure(.init("\(id): no --trusted-user-ca-keys configured")) }
        if let revokedKeysPath {
            do {
                if let why = try RevokedKeys.load(path: revokedKeysPath).revocation(of: certificate) {
                    return .failure(.init("\(id): \(why) in \(revokedKeysPath)"))
                }
            } catch {
                return .failure(.init("\(id): cannot read the revoked keys: \(error)"))
            }
        }
        var allowed = [user]
        if let principalsPattern {
            guard case .success(let account) = lookupAccount(user) else { return lookupAccount(user) }
            let path = Self.keysPath(principalsPattern, for: account)
            guard let text = try? String(decoding: SafeFile.read(path: path, owner: account.uid), as: UTF8.self) else {
                return .failure(.init("\(id): no authorized principals file \(path)"))
            }
            allowed = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty && !$0.hasPrefix("#")
            }
        }
        var refusal: QNSPCertificate.Refusal = .wrongPrincipal(user)
        var accepted = false
        for principal in allowed {
            do {
                try certificate.verify(trustedCAs: trustedCAs, kind: .user, principal: principal, now: now)
                accepted = true
                break
            } catch .wrongPrincipal {
                continue
            } catch {
                refusal = error
                break
            }
        }
        guard accepted else {
            if case .wrongPrincipal = refusal, principalsPattern != nil {
                return .failure(.init("\(id): none of its principals is in the authorized principals file"))
            }
            return .failure(.init("\(id): \(refusal)"))
        }
        var restrictions = SessionRestrictions()
        for option in certificate.options {
            switch option.name {
            case QNSPCertificate.Option.forceCommand:
                restrictions.forcedCommand = option.value
            case QNSPCertificate.Option.noPTY:
                restrictions.noPTY = true
            case QNSPCertificate.Option.noPortForwarding:
                restrictions.noPortForwarding = true
            case QNSPCertificate.Option.sourceAddress:
                guard let address = Self.addressBytes(peer) else {
                    return .failure(.init("\(id): client address '\(peer)' unknown"))
                }
                let blocks = option.value.split(separator: ",").compactMap {
                    CertificateSourceAddress.parse(String($0))
                }
                guard blocks.contains(where: { $0.contains(address) }) else {
                    return .failure(.init("\(id): source-address \(option.value) does not include \(peer)"))
                }
            case QNSPCertificate.Option.noAgentForwarding:
                restrictions.noAgentForwarding = true
            default:
                return .failure(
                    .init("\(id): option \(option.name) is not enforced by this qsshd; refusing the certificate")
                )
            }
        }
        return lookupAccount(user).map { account in
            var restricted = account
            restricted.restrictions = restrictions
            return restricted
        }
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
