// MARK: - Wire form of a ratchet tree

/// `optional<Node> ratchet_tree<V>`: the nodes of a ratchet tree in array order, as carried
/// in the `ratchet_tree` extension (RFC 9420 §12.4.3.3). Trailing blank nodes are omitted.
public struct RatchetTreeNodes: Hashable, Sendable, MLSCodable {
    public var nodes: [Node?]

    public init(nodes: [Node?]) {
        self.nodes = nodes
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeVector { w in
            for node in nodes {
                w.writeOptional(node)
            }
        }
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        nodes = try reader.readVector { (r: inout MLSReader) throws(MLSCodecError) -> Node? in
            try r.readOptional(of: Node.self)
        }
    }
}
