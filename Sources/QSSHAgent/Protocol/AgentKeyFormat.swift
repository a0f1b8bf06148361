import QNSPCrypto

/// How keys and signatures appear in the agent protocol (see docs/protocol.md §7.2):
/// key blob `string type || string public key`, signature blob `string type || string signature`.
public enum AgentKeyFormat {
    public static let keyType = UserPublicKey.keyType

    public static func keyBlob(type: AgentKeyType, publicKey: [UInt8]) -> [UInt8] {
        var w = AgentWireWriter(capacity: 24 + publicKey.count)
        w.write(text: type.rawValue)
        w.write(string: publicKey)
        return w.bytes
    }

    public static func keyBlob(_ key: UserPublicKey) -> [UInt8] { keyBlob(type: .qnspMLDSA65, publicKey: key.blob) }

    /// Type and raw public key of a key blob of a type we hold.
    public static func parse(blob: [UInt8]) throws(AgentError) -> (type: AgentKeyType, publicKey: [UInt8]) {
        var r = AgentWireReader(blob)
        let name = try r.readText("key type")
        guard let type = AgentKeyType(rawValue: name) else { throw .unsupportedKeyType(name) }
        let raw = try r.readString("public key")
        try r.expectEnd("the key blob")
        guard raw.count == type.publicKeySize else { throw .malformed("\(name) public key has \(raw.count) bytes") }
        return (type, raw)
    }

    /// Parses a `qnsp-mldsa65` key blob; another type is `.unsupportedKeyType`.
    public static func publicKey(fromBlob blob: [UInt8]) throws(AgentError) -> UserPublicKey {
        let (type, raw) = try parse(blob: blob)
        guard type == .qnspMLDSA65 else { throw .unsupportedKeyType(type.rawValue) }
        do {
            return try UserPublicKey(blob: raw)
        } catch {
            throw .malformed("public key: \(error)")
        }
    }

    /// The fingerprint OpenSSH would show: SHA-256 of the key blob for ssh-ed25519; for our
    /// keys, SHA-256 of the raw public key (as qssh-keygen -l shows it, docs/keys.md).
    public static func fingerprint(type: AgentKeyType, publicKey: [UInt8]) -> String {
        switch type {
        case .qnspMLDSA65: return Fingerprint.sha256(publicKey)
        case .ed25519: return Fingerprint.sha256(keyBlob(type: type, publicKey: publicKey))
        }
    }

    public static func signatureBlob(type: AgentKeyType = .qnspMLDSA65, _ signature: [UInt8]) -> [UInt8] {
        var w = AgentWireWriter(capacity: 24 + signature.count)
        w.write(text: type.rawValue)
        w.write(string: signature)
        return w.bytes
    }

    /// The raw signature from a signature blob of `type`.
    public static func signature(
        fromBlob blob: [UInt8],
        type: AgentKeyType = .qnspMLDSA65
    ) throws(AgentError) -> [UInt8] {
        var r = AgentWireReader(blob)
        let name = try r.readText("signature type")
        guard name == type.rawValue else { throw .unsupportedKeyType(name) }
        let sig = try r.readString("signature")
        try r.expectEnd("the signature blob")
        guard sig.count == type.signatureSize else {
            throw .malformed("signature has \(sig.count) bytes, expected \(type.signatureSize)")
        }
        return sig
    }
}
