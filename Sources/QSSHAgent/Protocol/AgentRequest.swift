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

/// A private key as SSH_AGENTC_ADD_IDENTITY carries it (docs/protocol.md §7.2):
/// `qnsp-mldsa65`: public key (1952) and the 32-byte ML-DSA-65 seed; `ssh-ed25519`
/// (OpenSSH's encoding): public key (32) and the 64-byte `seed || public key`.
public struct AgentKeyMaterial: Sendable, Equatable {
    public var type: AgentKeyType
    /// The raw public key: 1952 bytes (ML-DSA-65) or 32 bytes (Ed25519).
    public var publicKey: [UInt8]
    /// The 32-byte seed the private key is generated from.
    public var seed: [UInt8]
    public var comment: String

    public init(type: AgentKeyType, publicKey: [UInt8], seed: [UInt8], comment: String) {
        self.type = type
        self.publicKey = publicKey
        self.seed = seed
        self.comment = comment
    }

    public init(publicKey: UserPublicKey, seed: [UInt8], comment: String) {
        self.init(type: .qnspMLDSA65, publicKey: publicKey.blob, seed: seed, comment: comment)
    }

    public init(_ pair: UserKeyPair) {
        self.init(publicKey: pair.publicKey, seed: pair.signingKey.seed, comment: pair.comment)
    }

    public var keyBlob: [UInt8] { AgentKeyFormat.keyBlob(type: type, publicKey: publicKey) }

    func encode(into w: inout AgentWireWriter) {
        w.write(text: type.rawValue)
        w.write(string: publicKey)
        switch type {
        case .qnspMLDSA65:
            w.write(string: seed)
        case .ed25519:
            w.write(string: seed + publicKey)
        }
        w.write(text: comment)
    }

    static func decode(from r: inout AgentWireReader) throws(AgentError) -> AgentKeyMaterial {
        let name = try r.readText("key type")
        guard let type = AgentKeyType(rawValue: name) else { throw .unsupportedKeyType(name) }
        let raw = try r.readString("public key")
        var secret = try r.readString("private key")
        defer { ConstantTime.wipe(&secret) }
        let comment = try r.readText("comment")
        guard raw.count == type.publicKeySize else {
            throw .malformed("\(name) public key has \(raw.count) bytes, expected \(type.publicKeySize)")
        }
        var seed: [UInt8]
        switch type {
        case .qnspMLDSA65:
            guard secret.count == SignatureScheme.seedSize else {
                throw .malformed("seed has \(secret.count) bytes, expected \(SignatureScheme.seedSize)")
            }
            seed = secret
        case .ed25519:
            guard secret.count == 64, ConstantTime.equals(secret[32...], raw) else {
                throw .malformed("ssh-ed25519 private key is not seed || public key")
            }
            seed = Array(secret[0..<32])
        }
        return AgentKeyMaterial(type: type, publicKey: raw, seed: seed, comment: comment)
    }
}
