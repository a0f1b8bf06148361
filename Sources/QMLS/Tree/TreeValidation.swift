// MARK: - Ratchet tree validation (RFC 9420 §7.9.2, §12.4.3.1)

extension RatchetTree {
    /// The parent hash stored in a node (a leaf's only if it was created by a commit).
    private func storedParentHash(_ index: NodeIndex) -> [UInt8]? {
        switch node(index) {
        case .leaf(let leaf):
            return leaf.parentHash
        case .parent(let parentNode):
            return parentNode.parentHash
        case nil:
            return nil
        }
    }

    /// Checks that every non-blank parent node is parent-hash valid: exactly one descendant
    /// links to it by parent hash ("top down" verification).
    public mutating func verifyParentHashes(_ provider: CipherSuiteProvider) throws(MLSError) {
        for i in stride(from: 1, to: nodes.count, by: 2) {
            let index = NodeIndex(UInt32(i))
            guard let parentNode = parent(index) else {
                continue
            }
            let unmerged = Set(parentNode.unmergedLeaves)
            var links = 0
            for (child, sibling) in [
                (TreeMath.left(index), TreeMath.right(index)), (TreeMath.right(index), TreeMath.left(index)),
            ] {
                let expected = RatchetTree.parentHash(
                    encryptionKey: parentNode.encryptionKey,
                    parentHash: parentNode.parentHash,
                    originalSiblingTreeHash: treeHash(sibling, excluding: unmerged, provider),
                    provider
                )
                let resolution = resolution(child)
                let unmergedHere = Set(
                    parentNode.unmergedLeaves.filter { TreeMath.isInSubtree($0.node, of: child) }.map(\.node)
                )
                for candidate in resolution where storedParentHash(candidate) == expected {
                    var rest = Set(resolution)
                    rest.remove(candidate)
                    if rest == unmergedHere {
                        links += 1
                    }
                }
            }
            guard links == 1 else {
                throw .invalidTree("parent node \(i) is not parent-hash valid")
            }
        }
    }

    /// Checks `unmerged_leaves` entries and the uniqueness of encryption and signature keys.
    public func verifyStructure() throws(MLSError) {
        var encryptionKeys = Set<[UInt8]>()
        var signatureKeys = Set<[UInt8]>()
        for (i, node) in nodes.enumerated() {
            guard let node else {
                continue
            }
            guard encryptionKeys.insert(node.encryptionKey).inserted else {
                throw .invalidTree("encryption key of node \(i) appears twice in the tree")
            }
            switch node {
            case .leaf(let leaf):
                guard signatureKeys.insert(leaf.signatureKey).inserted else {
                    throw .invalidTree("signature key of node \(i) appears twice in the tree")
                }
            case .parent(let parentNode):
                let index = NodeIndex(UInt32(i))
                var previous: LeafIndex?
                for leaf in parentNode.unmergedLeaves {
                    if let previous, previous >= leaf {
                        throw .invalidTree("unmerged leaves of node \(i) are not in increasing order")
                    }
                    previous = leaf
                    guard leaf.value < leafCount, TreeMath.isInSubtree(leaf.node, of: index), self.leaf(leaf) != nil
                    else {
                        throw .invalidTree("unmerged leaf \(leaf.value) of node \(i) is not a member below it")
                    }
                    for between in TreeMath.directPath(leaf.node, leafCount: leafCount) {
                        if between == index {
                            break
                        }
                        if let intermediate = parent(between), !intermediate.unmergedLeaves.contains(leaf) {
                            throw .invalidTree("leaf \(leaf.value) is unmerged at node \(i) but not below it")
                        }
                    }
                }
            }
        }
    }
}
