// MARK: - Group info, group secrets and welcome

/// The signed description of a group epoch given to joiners (RFC 9420 §12.4.3).
public struct GroupInfo: Hashable, Sendable, MLSCodable {
    public var groupContext: GroupContext
    public var extensions: [Extension]
    public var confirmationTag: [UInt8]
    public var signer: LeafIndex
    public var signature: [UInt8]

    public init(
        groupContext: GroupContext,
        extensions: [Extension],
        confirmationTag: [UInt8],
        signer: LeafIndex,
        signature: [UInt8]
    ) {
        self.groupContext = groupContext
        self.extensions = extensions
        self.confirmationTag = confirmationTag
        self.signer = signer
        self.signature = signature
    }

    /// The `GroupInfoTBS` encoding.
    public var toBeSigned: [UInt8] {
        var writer = MLSWriter(capacity: 256)
        writer.write(groupContext)
        writer.writeVector(extensions)
        writer.writeOpaque(confirmationTag)
        writer.write(signer)
        return writer.bytes
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeRaw(toBeSigned)
        writer.writeOpaque(signature)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        groupContext = try reader.read()
        extensions = try reader.readVector()
        confirmationTag = try reader.readOpaque()
        signer = try reader.read()
        signature = try reader.readOpaque()
    }
}

/// The secrets a committer sends each new member (RFC 9420 §12.4.3.1).
public struct GroupSecrets: Hashable, Sendable, MLSCodable {
    public var joinerSecret: [UInt8]
    public var pathSecret: [UInt8]?
    public var psks: [PreSharedKeyID]

    public init(joinerSecret: [UInt8], pathSecret: [UInt8]?, psks: [PreSharedKeyID]) {
        self.joinerSecret = joinerSecret
        self.pathSecret = pathSecret
        self.psks = psks
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeOpaque(joinerSecret)
        if let pathSecret {
            writer.writeUInt8(1)
            writer.writeOpaque(pathSecret)
        } else {
            writer.writeUInt8(0)
        }
        writer.writeVector(psks)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        joinerSecret = try reader.readOpaque()
        pathSecret = try reader.readOptional { (r: inout MLSReader) throws(MLSCodecError) -> [UInt8] in
            try r.readOpaque()
        }
        psks = try reader.readVector()
    }
}

/// Group secrets encrypted to one new member's init key.
public struct EncryptedGroupSecrets: Hashable, Sendable, MLSCodable {
    public var newMember: [UInt8]
    public var encryptedGroupSecrets: HPKECiphertext

    public init(newMember: [UInt8], encryptedGroupSecrets: HPKECiphertext) {
        self.newMember = newMember
        self.encryptedGroupSecrets = encryptedGroupSecrets
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeOpaque(newMember)
        writer.write(encryptedGroupSecrets)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        newMember = try reader.readOpaque()
        encryptedGroupSecrets = try reader.read()
    }
}

/// The message that lets new members join an epoch (RFC 9420 §12.4.3.1).
public struct Welcome: Hashable, Sendable, MLSCodable {
    public var cipherSuite: CipherSuite
    public var secrets: [EncryptedGroupSecrets]
    public var encryptedGroupInfo: [UInt8]

    public init(cipherSuite: CipherSuite, secrets: [EncryptedGroupSecrets], encryptedGroupInfo: [UInt8]) {
        self.cipherSuite = cipherSuite
        self.secrets = secrets
        self.encryptedGroupInfo = encryptedGroupInfo
    }

    public func encode(to writer: inout MLSWriter) {
        writer.write(cipherSuite)
        writer.writeVector(secrets)
        writer.writeOpaque(encryptedGroupInfo)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        cipherSuite = try reader.read()
        secrets = try reader.readVector()
        encryptedGroupInfo = try reader.readOpaque()
    }
}
