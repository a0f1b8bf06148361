import QNSPCrypto

/// A client-to-agent message, decoded and checked.
public enum AgentRequest: Sendable, Equatable {
    case requestIdentities
    case sign(keyBlob: [UInt8], data: [UInt8], flags: UInt32)
    /// SSH_AGENTC_ADD_IDENTITY (no constraints) or SSH_AGENTC_ADD_ID_CONSTRAINED.
    case add(AgentKeyMaterial, constraints: AgentConstraints)
    case remove(keyBlob: [UInt8])
    case removeAll
    case lock(passphrase: [UInt8])
    case unlock(passphrase: [UInt8])
    /// A well-framed message we do not implement (answered with SSH_AGENT_FAILURE).
    case unsupported(AgentMessageType)

    /// Decodes one frame (type byte first).
    public init(frame: [UInt8]) throws(AgentError) {
        var r = AgentWireReader(frame)
        let type = AgentMessageType(rawValue: try r.readByte("message type"))
        switch type {
        case .requestIdentities:
            try r.expectEnd("request identities")
            self = .requestIdentities
        case .signRequest:
            let blob = try r.readString("key blob")
            let data = try r.readString("data")
            let flags = try r.readUInt32("flags")
            try r.expectEnd("sign request")
            self = .sign(keyBlob: blob, data: data, flags: flags)
        case .addIdentity, .addIdConstrained:
            let material = try AgentKeyMaterial.decode(from: &r)
            let constraints: AgentConstraints
            if type == .addIdConstrained {
                constraints = try AgentConstraints.decode(from: &r)
            } else {
                try r.expectEnd("add identity")
                constraints = AgentConstraints()
            }
            self = .add(material, constraints: constraints)
        case .removeIdentity:
            let blob = try r.readString("key blob")
            try r.expectEnd("remove identity")
            self = .remove(keyBlob: blob)
        case .removeAllIdentities:
            try r.expectEnd("remove all identities")
            self = .removeAll
        case .lock, .unlock:
            let passphrase = try r.readString("passphrase")
            try r.expectEnd("lock")
            self = type == .lock ? .lock(passphrase: passphrase) : .unlock(passphrase: passphrase)
        default:
            self = .unsupported(type)
        }
    }

    /// The message bytes (type byte first), to be framed with ``AgentFramer/frame(_:)``.
    public func encoded() -> [UInt8] {
        var w = AgentWireWriter()
        switch self {
        case .requestIdentities:
            w.write(byte: AgentMessageType.requestIdentities.rawValue)
        case .sign(let blob, let data, let flags):
            w.write(byte: AgentMessageType.signRequest.rawValue)
            w.write(string: blob)
            w.write(string: data)
            w.write(uint32: flags)
        case .add(let material, let constraints):
            w.write(byte: (constraints.isEmpty ? AgentMessageType.addIdentity : .addIdConstrained).rawValue)
            material.encode(into: &w)
            constraints.encode(into: &w)
        case .remove(let blob):
            w.write(byte: AgentMessageType.removeIdentity.rawValue)
            w.write(string: blob)
        case .removeAll:
            w.write(byte: AgentMessageType.removeAllIdentities.rawValue)
        case .lock(let p):
            w.write(byte: AgentMessageType.lock.rawValue)
            w.write(string: p)
        case .unlock(let p):
            w.write(byte: AgentMessageType.unlock.rawValue)
            w.write(string: p)
        case .unsupported(let type):
            w.write(byte: type.rawValue)
        }
        return w.bytes
    }
}

/// A private key as SSH_AGENTC_ADD_IDENTITY carries it: for `qnsp-mldsa65`, the public key
/// (checked against the one the seed regenerates) and the 32-byte ML-DSA-65 seed.
public struct AgentKeyMaterial: Sendable, Equatable {
    public var publicKey: UserPublicKey
    public var seed: [UInt8]
    public var comment: String

    public init(publicKey: UserPublicKey, seed: [UInt8], comment: String) {
        self.publicKey = publicKey
        self.seed = seed
        self.comment = comment
    }

    public init(_ pair: UserKeyPair) {
        self.init(publicKey: pair.publicKey, seed: pair.signingKey.seed, comment: pair.comment)
    }

    func encode(into w: inout AgentWireWriter) {
        w.write(text: AgentKeyFormat.keyType)
        w.write(string: publicKey.blob)
        w.write(string: seed)
        w.write(text: comment)
    }

    static func decode(from r: inout AgentWireReader) throws(AgentError) -> AgentKeyMaterial {
        let type = try r.readText("key type")
        guard type == AgentKeyFormat.keyType else { throw .unsupportedKeyType(type) }
        let raw = try r.readString("public key")
        var seed = try r.readString("seed")
        let comment = try r.readText("comment")
        guard seed.count == SignatureScheme.seedSize else {
            ConstantTime.wipe(&seed)
            throw .malformed("seed has \(seed.count) bytes, expected \(SignatureScheme.seedSize)")
        }
        let key: UserPublicKey
        do {
            key = try UserPublicKey(blob: raw)
        } catch {
            ConstantTime.wipe(&seed)
            throw .malformed("public key: \(error)")
        }
        return AgentKeyMaterial(publicKey: key, seed: seed, comment: comment)
    }
}
