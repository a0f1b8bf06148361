import QNSPCrypto

/// How our ML-DSA-65 user keys appear in the agent protocol (see docs/protocol.md §7):
/// key blob `string "qnsp-mldsa65" || string public key (1952)`, signature blob
/// `string "qnsp-mldsa65" || string signature (3309)`, and in SSH_AGENTC_ADD_IDENTITY
/// `string "qnsp-mldsa65" || string public key || string seed (32)` before the comment.
public enum AgentKeyFormat {
    public static let keyType = UserPublicKey.keyType

    public static func keyBlob(_ key: UserPublicKey) -> [UInt8] {
        var w = AgentWireWriter(capacity: 16 + SignatureScheme.publicKeySize)
        w.write(text: keyType)
        w.write(string: key.blob)
        return w.bytes
    }

    /// Parses a key blob; a type other than ours is `.unsupportedKeyType`.
    public static func publicKey(fromBlob blob: [UInt8]) throws(AgentError) -> UserPublicKey {
        var r = AgentWireReader(blob)
        let type = try r.readText("key type")
        guard type == keyType else { throw .unsupportedKeyType(type) }
        let raw = try r.readString("public key")
        try r.expectEnd("the key blob")
        do {
            return try UserPublicKey(blob: raw)
        } catch {
            throw .malformed("public key: \(error)")
        }
    }

    public static func signatureBlob(_ signature: [UInt8]) -> [UInt8] {
        var w = AgentWireWriter(capacity: 16 + SignatureScheme.signatureSize)
        w.write(text: keyType)
        w.write(string: signature)
        return w.bytes
    }

    /// The raw ML-DSA-65 signature from a signature blob.
    public static func signature(fromBlob blob: [UInt8]) throws(AgentError) -> [UInt8] {
        var r = AgentWireReader(blob)
        let type = try r.readText("signature type")
        guard type == keyType else { throw .unsupportedKeyType(type) }
        let sig = try r.readString("signature")
        try r.expectEnd("the signature blob")
        guard sig.count == SignatureScheme.signatureSize else {
            throw .malformed("signature has \(sig.count) bytes, expected \(SignatureScheme.signatureSize)")
        }
        return sig
    }
}
