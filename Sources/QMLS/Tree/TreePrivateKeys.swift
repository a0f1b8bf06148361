// MARK: - Private half of the ratchet tree

/// The HPKE private keys one member holds: its own leaf's and those of parent nodes on its
/// direct path that it learned from UpdatePaths or a Welcome (the tree invariant, RFC 9420 §4.4).
struct TreePrivateKeys: Sendable, Equatable {
    var ownLeaf: LeafIndex
    var leafKey: [UInt8]
    /// Parent node index → key pair (the public key lets stale entries be detected).
    var pathKeys: [UInt32: HPKEKeyPair]

    init(ownLeaf: LeafIndex, leafKey: [UInt8], pathKeys: [UInt32: HPKEKeyPair] = [:]) {
        self.ownLeaf = ownLeaf
        self.leafKey = leafKey
        self.pathKeys = pathKeys
    }

    /// The private key for a node of the tree, if this member holds it.
    func privateKey(for node: NodeIndex) -> [UInt8]? {
        if node == ownLeaf.node {
            return leafKey
        }
        return pathKeys[node.value]?.privateKey
    }

    /// Drops keys whose node was blanked, replaced or truncated away.
    mutating func prune(against tree: RatchetTree) {
        pathKeys = pathKeys.filter { entry in
            tree.parent(NodeIndex(entry.key))?.encryptionKey == entry.value.publicKey
        }
    }
}

extension TreePrivateKeys: MLSCodable {
    func encode(to writer: inout MLSWriter) {
        writer.write(ownLeaf)
        writer.writeOpaque(leafKey)
        writer.writeVector { w in
            for (node, pair) in pathKeys.sorted(by: { $0.key < $1.key }) {
                w.writeUInt32(node)
                w.writeOpaque(pair.privateKey)
                w.writeOpaque(pair.publicKey)
            }
        }
    }

    init(from reader: inout MLSReader) throws(MLSCodecError) {
        ownLeaf = try reader.read()
        leafKey = try reader.readOpaque()
        let entries = try reader.readVector { (r: inout MLSReader) throws(MLSCodecError) -> (UInt32, HPKEKeyPair) in
            (try r.readUInt32(), HPKEKeyPair(privateKey: try r.readOpaque(), publicKey: try r.readOpaque()))
        }
        pathKeys = Dictionary(entries, uniquingKeysWith: { first, _ in first })
    }
}
