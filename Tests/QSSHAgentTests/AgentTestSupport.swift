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

/// A deterministic generator for randomized tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
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
