// MARK: - Group context

/// The summary of a group's state that every member agrees on in an epoch (RFC 9420 §8.1).
public struct GroupContext: Hashable, Sendable, MLSCodable {
    public var version: ProtocolVersion
    public var cipherSuite: CipherSuite
    public var groupID: [UInt8]
    public var epoch: UInt64
    public var treeHash: [UInt8]
    public var confirmedTranscriptHash: [UInt8]
    public var extensions: [Extension]

    public init(
        version: ProtocolVersion = .mls10,
        cipherSuite: CipherSuite,
        groupID: [UInt8],
        epoch: UInt64,
        treeHash: [UInt8],
        confirmedTranscriptHash: [UInt8],
        extensions: [Extension]
    ) {
        self.version = version
        self.cipherSuite = cipherSuite
        self.groupID = groupID
        self.epoch = epoch
        self.treeHash = treeHash
        self.confirmedTranscriptHash = confirmedTranscriptHash
        self.extensions = extensions
    }

    public func encode(to writer: inout MLSWriter) {
        writer.write(version)
        writer.write(cipherSuite)
        writer.writeOpaque(groupID)
        writer.writeUInt64(epoch)
        writer.writeOpaque(treeHash)
        writer.writeOpaque(confirmedTranscriptHash)
        writer.writeVector(extensions)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        version = try reader.read()
        cipherSuite = try reader.read()
        groupID = try reader.readOpaque()
        epoch = try reader.readUInt64()
        treeHash = try reader.readOpaque()
        confirmedTranscriptHash = try reader.readOpaque()
        extensions = try reader.readVector()
    }
}
