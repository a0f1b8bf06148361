// MARK: - Leaf and node indices

/// The index of a leaf among the leaves of a ratchet tree (leaf `i` is node `2i`).
public struct LeafIndex: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) {
        self.value = value
    }

    /// The node index of this leaf in the array representation of the tree.
    public var node: NodeIndex {
        NodeIndex(value &* 2)
    }

    public static func < (lhs: LeafIndex, rhs: LeafIndex) -> Bool {
        lhs.value < rhs.value
    }

    public var description: String {
        "leaf \(value)"
    }
}

extension LeafIndex: MLSCodable {
    public func encode(to writer: inout MLSWriter) {
        writer.writeUInt32(value)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        value = try reader.readUInt32()
    }
}

/// The index of a node in the array representation of a ratchet tree (RFC 9420 Appendix C).
public struct NodeIndex: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) {
        self.value = value
    }

    /// Leaves sit at even node indices.
    public var isLeaf: Bool {
        value & 1 == 0
    }

    /// The leaf index of a leaf node.
    public var leaf: LeafIndex {
        precondition(isLeaf, "node \(value) is not a leaf")
        return LeafIndex(value / 2)
    }

    public static func < (lhs: NodeIndex, rhs: NodeIndex) -> Bool {
        lhs.value < rhs.value
    }

    public var description: String {
        "node \(value)"
    }
}
