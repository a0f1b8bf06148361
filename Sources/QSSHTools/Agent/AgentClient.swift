import Crypto
import QNSPCrypto
import QSSHAgent
import QSSHSession

#if canImport(Foundation)
import Foundation
#endif

/// Talks to a running qssh-agent (one connection per call): what qssh-add and the clients use.
package struct AgentClient: Sendable {
    /// The variable that names the agent's socket (our own, beside OpenSSH's SSH_AUTH_SOCK).
    package static let socketVariable = AgentForwarding.socketVariable
    /// The variable that names the agent's pid (for `qssh-agent -k`).
    package static let pidVariable = "QSSH_AGENT_PID"

    package var socketPath: String

    package init(socketPath: String) { self.socketPath = socketPath }

    /// The agent named by QSSH_AUTH_SOCK, if the variable is set and not empty.
    package static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> AgentClient? {
        guard let path = env[socketVariable], !path.isEmpty else { return nil }
        return AgentClient(socketPath: path)
    }

    package func request(_ request: AgentRequest) throws(AgentError) -> AgentResponse {
        var connection = try AgentConnection.connect(path: socketPath)
        defer { connection.close() }
        return try connection.roundTrip(request)
    }

    /// Expects SSH_AGENT_SUCCESS.
    package func perform(_ request: AgentRequest) throws(AgentError) {
        switch try self.request(request) {
        case .success: return
        case .failure: throw .refused
        case .identities: throw .unexpectedResponse(AgentMessageType.identitiesAnswer.rawValue)
        case .signature: throw .unexpectedResponse(AgentMessageType.signResponse.rawValue)
        }
    }

    /// The keys the agent holds, ours decoded; other key types are listed with `key` nil.
    package func identities() throws(AgentError) -> [(identity: AgentIdentity, key: UserPublicKey?)] {
        switch try request(.requestIdentities) {
        case .identities(let list): return list.map { ($0, try? AgentKeyFormat.publicKey(fromBlob: $0.keyBlob)) }
        case .failure: throw .refused
        case .success: throw .unexpectedResponse(AgentMessageType.success.rawValue)
        case .signature: throw .unexpectedResponse(AgentMessageType.signResponse.rawValue)
        }
    }

    package func add(_ pair: UserKeyPair, constraints: AgentConstraints) throws(AgentError) {
        var material = AgentKeyMaterial(pair)
        defer { ConstantTime.wipe(&material.seed) }
        try perform(.add(material, constraints: constraints))
    }

    /// Adds an OpenSSH Ed25519 key (for the classical login behind a bridge).
    package func add(
        ed25519 key: Curve25519.Signing.PrivateKey,
        comment: String,
        constraints: AgentConstraints
    ) throws(AgentError) {
        var material = AgentKeyMaterial(
            type: .ed25519,
            publicKey: Array(key.publicKey.rawRepresentation),
            seed: Array(key.rawRepresentation),
            comment: comment
        )
        defer { ConstantTime.wipe(&material.seed) }
        try perform(.add(material, constraints: constraints))
    }

    /// A raw ML-DSA-65 signature of `message` under `context` by the held key `key`.
    package func sign(key: UserPublicKey, message: [UInt8], context: [UInt8]) throws(AgentError) -> [UInt8] {
        let data = ClientAuthSigningInput.agentData(message: message, context: context)
        switch try request(.sign(keyBlob: AgentKeyFormat.keyBlob(key), data: data, flags: 0)) {
        case .signature(let blob): return try AgentKeyFormat.signature(fromBlob: blob)
        case .failure: throw .refused
        case .success: throw .unexpectedResponse(AgentMessageType.success.rawValue)
        case .identities: throw .unexpectedResponse(AgentMessageType.identitiesAnswer.rawValue)
        }
    }
}
