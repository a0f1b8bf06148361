import QNSPCrypto
import QSSHAgent

/// A ``UserAuthSigner`` whose key lives in qssh-agent: the ClientAuth signature is one
/// SIGN_REQUEST, and the client never reads the private key file.
package struct AgentSigner: UserAuthSigner {
    package let agent: AgentClient
    package let publicKey: UserPublicKey

    package init(agent: AgentClient, publicKey: UserPublicKey) {
        self.agent = agent
        self.publicKey = publicKey
    }

    package func sign(_ message: [UInt8], context: [UInt8]) throws(QNSPCryptoError) -> [UInt8] {
        do {
            let signature = try agent.sign(key: publicKey, message: message, context: context)
            // A signature that does not verify would only make the server refuse us with a vaguer message.
            guard publicKey.signing.isValidSignature(signature, for: message, context: context) else {
                throw QNSPCryptoError.signerFailed("the agent's signature does not verify")
            }
            return signature
        } catch let e as QNSPCryptoError {
            throw e
        } catch AgentError.refused {
            throw .signerFailed(
                "the agent refused to sign with \(publicKey.fingerprint) (locked, or confirmation denied)"
            )
        } catch {
            throw .signerFailed("agent: \(error)")
        }
    }
}
