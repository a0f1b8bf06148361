import Foundation
import QNSP
import QNSPCrypto
import QSSHAgent

/// Keys made once for the agent tests.
enum AgentKeys {
    static let alice: UserKeyPair = {
        do { return try UserKeyPair.generate(comment: "alice@laptop") } catch {
            preconditionFailure("key generation: \(error)")
        }
    }()
    static let bob: UserKeyPair = {
        do { return try UserKeyPair.generate(comment: "bob") } catch { preconditionFailure("key generation: \(error)") }
    }()

    /// A ClientAuth signing input for `pair`, as the QNSP client makes it.
    static func input(for pair: UserKeyPair, user: String = "alice", hashByte: UInt8 = 7) -> ClientAuthSigningInput {
        ClientAuthSigningInput(
            transcriptHash: [UInt8](repeating: hashByte, count: KeySchedule.hashSize),
            username: user,
            publicKey: pair.publicKey.blob
        )
    }

    static func signRequest(_ pair: UserKeyPair, input: ClientAuthSigningInput? = nil) -> AgentRequest {
        .sign(
            keyBlob: AgentKeyFormat.keyBlob(pair.publicKey),
            data: (input ?? self.input(for: pair)).agentData,
            flags: 0
        )
    }
}

func makeAgentTempDir() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qssh-agent-\(UUID().uuidString.prefix(8))")
        .path
    try FileManager.default.createDirectory(
        atPath: dir,
        withIntermediateDirectories: true,
        attributes: [.posixPermissions: 0o700]
    )
    return dir
}
