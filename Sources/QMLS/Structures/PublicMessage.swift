// MARK: - Public and private messages

/// A signed, unencrypted handshake message (RFC 9420 §6.2).
public struct PublicMessage: Hashable, Sendable, MLSCodable {
    public var content: FramedContent
    public var auth: FramedContentAuthData
    /// Present exactly when the sender is a member.
    public var membershipTag: [UInt8]?

    public init(content: FramedContent, auth: FramedContentAuthData, membershipTag: [UInt8]?) {
        self.content = content
        self.auth = auth
        self.membershipTag = membershipTag
    }

    public func encode(to writer: inout MLSWriter) {
        writer.write(content)
        auth.encode(to: &writer)
        if let membershipTag {
            writer.writeOpaque(membershipTag)
        }
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        content = try reader.read()
        auth = try FramedContentAuthData(from: &reader, contentType: content.contentType)
        if case .member = content.sender {
            membershipTag = try reader.readOpaque()
        } else {
            membershipTag = nil
        }
    }
}

/// A signed and encrypted message (RFC 9420 §6.3).
public struct PrivateMessage: Hashable, Sendable, MLSCodable {
    public var groupID: [UInt8]
    public var epoch: UInt64
    public var contentType: ContentType
    public var authenticatedData: [UInt8]
    public var encryptedSenderData: [UInt8]
    public var ciphertext: [UInt8]

    public init(
        groupID: [UInt8],
        epoch: UInt64,
        contentType: ContentType,
        authenticatedData: [UInt8],
        encryptedSenderData: [UInt8],
        ciphertext: [UInt8]
    ) {
        self.groupID = groupID
        self.epoch = epoch
        self.contentType = contentType
        self.authenticatedData = authenticatedData
        self.encryptedSenderData = encryptedSenderData
        self.ciphertext = ciphertext
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeOpaque(groupID)
        writer.writeUInt64(epoch)
        writer.write(contentType)
        writer.writeOpaque(authenticatedData)
        writer.writeOpaque(encryptedSenderData)
        writer.writeOpaque(ciphertext)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        groupID = try reader.readOpaque()
        epoch = try reader.readUInt64()
        contentType = try reader.read()
        authenticatedData = try reader.readOpaque()
        encryptedSenderData = try reader.readOpaque()
        ciphertext = try reader.readOpaque()
    }
}

/// The key-lookup data encrypted in a PrivateMessage (RFC 9420 §6.3.2).
public struct SenderData: Hashable, Sendable, MLSCodable {
    public var leafIndex: LeafIndex
    public var generation: UInt32
    public var reuseGuard: [UInt8]

    public init(leafIndex: LeafIndex, generation: UInt32, reuseGuard: [UInt8]) {
        self.leafIndex = leafIndex
        self.generation = generation
        self.reuseGuard = reuseGuard
    }

    public func encode(to writer: inout MLSWriter) {
        writer.write(leafIndex)
        writer.writeUInt32(generation)
        writer.writeRaw(reuseGuard)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        leafIndex = try reader.read()
        generation = try reader.readUInt32()
        reuseGuard = try reader.readBytes(4)
    }
}
