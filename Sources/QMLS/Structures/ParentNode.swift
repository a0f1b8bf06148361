// MARK: - Parent node and tree node

/// An intermediate node of the ratchet tree (RFC 9420 §7.1).
public struct ParentNode: Hashable, Sendable, MLSCodable {
    public var encryptionKey: [UInt8]
    public var parentHash: [UInt8]
    /// Leaves below this node that do not know its private key, in increasing order.
    public var unmergedLeaves: [LeafIndex]

    public init(encryptionKey: [UInt8], parentHash: [UInt8], unmergedLeaves: [LeafIndex]) {
        self.encryptionKey = encryptionKey
        self.parentHash = parentHash
        self.unmergedLeaves = unmergedLeaves
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeOpaque(encryptionKey)
        writer.writeOpaque(parentHash)
        writer.writeVector(unmergedLeaves)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        encryptionKey = try reader.readOpaque()
        parentHash = try reader.readOpaque()
        unmergedLeaves = try reader.readVector()
    }
}

/// A non-blank node of the ratchet tree, as carried in the `ratchet_tree` extension.
public enum Node: Hashable, Sendable, MLSCodable {
    case leaf(LeafNode)
    case parent(ParentNode)

    public var encryptionKey: [UInt8] {
        switch self {
        case .leaf(let leaf):
            return leaf.encryptionKey
        case .parent(let parent):
            return parent.encryptionKey
        }
    }

    public var leafNode: LeafNode? {
        if case .leaf(let leaf) = self {
            return leaf
        }
        return nil
    }

    public var parentNode: ParentNode? {
        if case .parent(let parent) = self {
            return parent
        }
        return nil
    }

    public func encode(to writer: inout MLSWriter) {
        switch self {
        case .leaf(let leaf):
            writer.writeUInt8(1)
            writer.write(leaf)
        case .parent(let parent):
            writer.writeUInt8(2)
            writer.write(parent)
        }
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        let type = try reader.readUInt8()
        switch type {
        case 1:
            self = .leaf(try reader.read())
        case 2:
            self = .parent(try reader.read())
        default:
            throw .invalidEnumValue(field: "NodeType", value: UInt64(type))
        }
    }
}
