import Foundation
import QNSPCrypto
import QSSHAgent

extension ClientIdentity {
    /// The signer for a client's login: the agent named by QSSH_AUTH_SOCK when it holds the
    /// key, else the key file.
    ///
    /// Which agent key: the one whose public key is in `path.pub` (or, without it, in the clear
    /// header of `path`); with neither readable, the agent's first QNSP key. When the agent is
    /// used the private key is never decrypted, and with a `.pub` file the private file is not
    /// opened at all. An agent that cannot be reached is ignored (with -v, said so).
    package static func signer(
        path: String,
        interactive: Bool,
        verbose: Bool,
        toolName: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> any UserAuthSigner {
        if let agent = AgentClient.fromEnvironment(environment) {
            do {
                let held = try agent.identities().compactMap(\.key)
                let wanted = try? AddCommand.publicKey(of: path)
                let chosen = wanted.map { w in held.first { $0 == w } } ?? held.first
                if let chosen {
                    if verbose { Terminal.warn("\(toolName): using the agent's key \(chosen.fingerprint)") }
                    return AgentSigner(agent: agent, publicKey: chosen)
                }
                if verbose { Terminal.warn("\(toolName): the agent does not hold the key for \(path)") }
            } catch {
                if verbose { Terminal.warn("\(toolName): agent not used: \(error)") }
            }
        }
        return try load(path: path, interactive: interactive)
    }
}

extension ClientIdentity {
    /// The user certificate beside an identity (`IDENTITY-cert.pub`, as OpenSSH names it), when
    /// it certifies `key`; an unreadable or mismatched file is ignored (said so with -v).
    package static func certificate(
        for path: String,
        key: UserPublicKey,
        verbose: Bool,
        toolName: String
    ) -> QNSPCertificate? {
        let certPath = path + "-cert.pub"
        guard FileManager.default.fileExists(atPath: certPath) else { return nil }
        do {
            let text = try KeyFileIO.readText(path: certPath, limit: 1 << 16)
            guard let first = text.split(whereSeparator: \.isNewline).first else { return nil }
            let cert = try QNSPCertificate(line: String(first))
            guard case .user(let subject) = cert.subject, subject == key else {
                if verbose { Terminal.warn("\(toolName): \(certPath) certifies another key; not used") }
                return nil
            }
            if verbose {
                Terminal.warn(
                    "\(toolName): presenting certificate \"\(cert.keyID)\" serial \(cert.serial) from \(certPath)"
                )
            }
            return cert
        } catch {
            if verbose { Terminal.warn("\(toolName): \(certPath): \(error); not used") }
            return nil
        }
    }
}
