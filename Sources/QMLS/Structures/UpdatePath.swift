// MARK: - Update path

/// One node of an UpdatePath: the new public key and the path secret encrypted to the
/// resolution of the copath child.
public struct UpdatePathNode: Hashable, Sendable, MLSCodable {
    public var encryptionKey: [UInt8]
    public var encryptedPathSecret: [HPKECiphertext]

    public init(encryptionKey: [UInt8], encryptedPathSecret: [HPKECiphertext]) {
        self.encryptionKey = encryptionKey
        self.encryptedPathSecret = encryptedPathSecret
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeOpaque(encryptionKey)
        writer.writeVector(encryptedPathSecret)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        encryptionKey = try reader.readOpaque()
        encryptedPathSecret = try reader.readVector()
    }
}

/// The committer's new leaf node and keys for its filtered direct path (RFC 9420 §7.6).
public struct UpdatePath: Hashable, Sendable, MLSCodable {
    public var leafNode: LeafNode
    public var nodes: [UpdatePathNode]

    public init(leafNode: LeafNode, nodes: [UpdatePathNode]) {
        self.leafNode = leafNode
        self.nodes = nodes
    }

    public func encode(to writer: inout MLSWriter) {
        writer.write(leafNode)
        writer.writeVector(nodes)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        leafNode = try reader.read()
        nodes = try reader.readVector()
    }
}
