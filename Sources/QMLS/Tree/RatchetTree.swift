// MARK: - Ratchet tree

/// The public state of a group's ratchet tree (RFC 9420 §7) in array form, with cached tree hashes.
///
/// The tree always has a power-of-two number of leaves. Every mutation goes through a method
/// here so that the cached hashes of the changed nodes and their ancestors are invalidated.
public struct RatchetTree: Sendable, Equatable {
    public private(set) var nodes: [Node?]
    private var hashCache: [[UInt8]?]

    public static func == (lhs: RatchetTree, rhs: RatchetTree) -> Bool {
        lhs.nodes == rhs.nodes
    }

    /// A one-leaf tree holding the creator's leaf node.
    public init(creator: LeafNode) {
        nodes = [.leaf(creator)]
        hashCache = [nil]
    }

    /// A tree from its wire form: checks node kinds and the non-blank last node, then pads the
    /// array with blanks to the full width.
    public init(_ wire: RatchetTreeNodes) throws(MLSError) {
        guard let last = wire.nodes.last, last != nil else {
            throw .invalidTree("the last node of a ratchet tree must not be blank")
        }
        guard wire.nodes.count <= (1 << 31) else {
            throw .invalidTree("ratchet tree too large")
        }
        var width = 1
        while width < wire.nodes.count {
            width = 2 * width + 1
        }
        var padded = wire.nodes
        padded.append(contentsOf: [Node?](repeating: nil, count: width - wire.nodes.count))
        for (index, node) in padded.enumerated() {
            guard let node else {
                continue
            }
            switch node {
            case .leaf:
                if index % 2 != 0 {
                    throw .invalidTree("leaf node at parent position \(index)")
                }
            case .parent:
                if index % 2 != 1 {
                    throw .invalidTree("parent node at leaf position \(index)")
                }
            }
        }
        nodes = padded
        hashCache = [[UInt8]?](repeating: nil, count: padded.count)
    }

    /// The wire form, without trailing blank nodes.
    public var wireNodes: RatchetTreeNodes {
        var trimmed = nodes
        while let last = trimmed.last, last == nil {
            trimmed.removeLast()
        }
        return RatchetTreeNodes(nodes: trimmed)
    }

    // MARK: Shape

    public var leafCount: UInt32 {
        UInt32((nodes.count + 1) / 2)
    }

    public var root: NodeIndex {
        TreeMath.root(leafCount)
    }

    public func node(_ index: NodeIndex) -> Node? {
        Int(index.value) < nodes.count ? nodes[Int(index.value)] : nil
    }

    /// The leaf node at a leaf index; nil for blank leaves and indices outside the tree
    /// (leaf indices come from peers, and `2 * index` must not wrap onto another leaf).
    public func leaf(_ index: LeafIndex) -> LeafNode? {
        guard index.value < leafCount else {
            return nil
        }
        return node(index.node)?.leafNode
    }

    public func parent(_ index: NodeIndex) -> ParentNode? {
        node(index)?.parentNode
    }

    /// Indices and leaf nodes of all non-blank leaves, in order.
    public var members: [(index: LeafIndex, leaf: LeafNode)] {
        var out: [(LeafIndex, LeafNode)] = []
        for i in stride(from: 0, to: nodes.count, by: 2) {
            if let leaf = nodes[i]?.leafNode {
                out.append((LeafIndex(UInt32(i / 2)), leaf))
            }
        }
        return out
    }

    public var memberCount: Int {
        stride(from: 0, to: nodes.count, by: 2).reduce(0) { $0 + (nodes[$1] == nil ? 0 : 1) }
    }

    // MARK: Mutation

    private mutating func set(_ index: NodeIndex, _ node: Node?) {
        nodes[Int(index.value)] = node
        invalidate(index)
    }

    /// Drops the cached hash of `index` and its ancestors.
    private mutating func invalidate(_ index: NodeIndex) {
        hashCache[Int(index.value)] = nil
        let count = leafCount
        var current = index
        let rootIndex = root
        while current != rootIndex {
            current = TreeMath.parent(current, leafCount: count)
            if hashCache[Int(current.value)] == nil {
                // Ancestors of an invalidated node are already invalid.
                break
            }
            hashCache[Int(current.value)] = nil
        }
    }

    public mutating func setLeaf(_ index: LeafIndex, _ leaf: LeafNode?) {
        set(index.node, leaf.map { Node.leaf($0) })
    }

    public mutating func setParent(_ index: NodeIndex, _ parent: ParentNode?) {
        set(index, parent.map { Node.parent($0) })
    }

    /// Blanks every node on the direct path of `leaf`.
    public mutating func blankDirectPath(_ leaf: LeafIndex) {
        for node in TreeMath.directPath(leaf.node, leafCount: leafCount) where nodes[Int(node.value)] != nil {
            set(node, nil)
        }
    }

    /// Doubles the number of leaves, adding blank nodes on the right.
    private mutating func extend() {
        let added = nodes.count + 1
        nodes.append(contentsOf: [Node?](repeating: nil, count: added))
        hashCache.append(contentsOf: [[UInt8]?](repeating: nil, count: added))
        // The old root gets a parent: its ancestors are all new and uncached.
    }

    /// The leaf an Add or external join would take: the leftmost blank leaf, or the first leaf
    /// of the extension.
    public var nextFreeLeaf: LeafIndex {
        for i in stride(from: 0, to: nodes.count, by: 2) where nodes[i] == nil {
            return LeafIndex(UInt32(i / 2))
        }
        return LeafIndex(leafCount)
    }

    /// Adds a leaf at the leftmost blank position, extending the tree if needed, and records it
    /// as unmerged at every non-blank ancestor (RFC 9420 §12.1.1).
    @discardableResult
    public mutating func addLeaf(_ leafNode: LeafNode) -> LeafIndex {
        var index: LeafIndex?
        for i in stride(from: 0, to: nodes.count, by: 2) where nodes[i] == nil {
            index = LeafIndex(UInt32(i / 2))
            break
        }
        if index == nil {
            let first = leafCount
            extend()
            index = LeafIndex(first)
        }
        guard let leaf = index else {
            preconditionFailure("no leaf after extending the tree")
        }
        for ancestor in TreeMath.directPath(leaf.node, leafCount: leafCount) {
            if var parentNode = parent(ancestor) {
                var unmerged = parentNode.unmergedLeaves
                let position = unmerged.firstIndex { $0 > leaf } ?? unmerged.count
                unmerged.insert(leaf, at: position)
                parentNode.unmergedLeaves = unmerged
                set(ancestor, .parent(parentNode))
            }
        }
        set(leaf.node, .leaf(leafNode))
        return leaf
    }

    /// Blanks a leaf and its direct path (a Remove); call ``truncate()`` after all removals.
    public mutating func removeLeaf(_ leaf: LeafIndex) {
        set(leaf.node, nil)
        blankDirectPath(leaf)
    }

    /// Replaces a leaf and blanks its direct path (an Update).
    public mutating func updateLeaf(_ leaf: LeafIndex, _ leafNode: LeafNode) {
        set(leaf.node, .leaf(leafNode))
        blankDirectPath(leaf)
    }

    /// Removes right halves of the tree while they hold no non-blank leaf.
    public mutating func truncate() {
        while leafCount > 1 {
            let half = nodes.count / 2
            let rightLeavesBlank = stride(from: half + 1, to: nodes.count, by: 2).allSatisfy { nodes[$0] == nil }
            guard rightLeavesBlank else {
                return
            }
            nodes.removeLast(nodes.count - half)
            hashCache.removeLast(hashCache.count - half)
        }
    }

    // MARK: Resolution and paths

    /// The resolution of a node (RFC 9420 §4.1.1).
    public func resolution(_ index: NodeIndex) -> [NodeIndex] {
        var out: [NodeIndex] = []
        appendResolution(index, to: &out)
        return out
    }

    private func appendResolution(_ index: NodeIndex, to out: inout [NodeIndex]) {
        switch nodes[Int(index.value)] {
        case .leaf:
            out.append(index)
        case .parent(let parentNode):
            out.append(index)
            for leaf in parentNode.unmergedLeaves {
                out.append(leaf.node)
            }
        case nil:
            if !index.isLeaf {
                appendResolution(TreeMath.left(index), to: &out)
                appendResolution(TreeMath.right(index), to: &out)
            }
        }
    }

    /// Whether the resolution of a node is empty (no non-blank node in its subtree).
    private func resolutionIsEmpty(_ index: NodeIndex) -> Bool {
        if nodes[Int(index.value)] != nil {
            return false
        }
        if index.isLeaf {
            return true
        }
        return resolutionIsEmpty(TreeMath.left(index)) && resolutionIsEmpty(TreeMath.right(index))
    }

    /// The filtered direct path of a leaf, each node paired with its child on the leaf's copath.
    public func filteredDirectPath(_ leaf: LeafIndex) -> [(node: NodeIndex, copathChild: NodeIndex)] {
        let count = leafCount
        var out: [(NodeIndex, NodeIndex)] = []
        var child = leaf.node
        let rootIndex = root
        while child != rootIndex {
            let parentIndex = TreeMath.parent(child, leafCount: count)
            let sibling = TreeMath.sibling(child, leafCount: count)
            if !resolutionIsEmpty(sibling) {
                out.append((parentIndex, sibling))
            }
            child = parentIndex
        }
        return out
    }

    // MARK: Tree hashes

    /// The tree hash of the root.
    public mutating func rootHash(_ provider: CipherSuiteProvider) -> [UInt8] {
        treeHash(root, provider)
    }

    /// The tree hash of a node (RFC 9420 §7.8), computed from cached child hashes.
    public mutating func treeHash(_ index: NodeIndex, _ provider: CipherSuiteProvider) -> [UInt8] {
        if let cached = hashCache[Int(index.value)] {
            return cached
        }
        let hash: [UInt8]
        if index.isLeaf {
            hash = leafHash(index, provider)
        } else {
            let left = treeHash(TreeMath.left(index), provider)
            let right = treeHash(TreeMath.right(index), provider)
            hash = Self.parentHashInputDigest(nodes[Int(index.value)]?.parentNode, left, right, provider)
        }
        hashCache[Int(index.value)] = hash
        return hash
    }

    private func leafHash(_ index: NodeIndex, _ provider: CipherSuiteProvider) -> [UInt8] {
        var writer = MLSWriter(capacity: 512)
        writer.writeUInt8(1)
        writer.writeUInt32(index.value / 2)
        writer.writeOptional(nodes[Int(index.value)]?.leafNode)
        return provider.digest(writer.bytes)
    }

    private static func parentHashInputDigest(
        _ parentNode: ParentNode?,
        _ left: [UInt8],
        _ right: [UInt8],
        _ provider: CipherSuiteProvider
    ) -> [UInt8] {
        var writer = MLSWriter(capacity: 256)
        writer.writeUInt8(2)
        writer.writeOptional(parentNode)
        writer.writeOpaque(left)
        writer.writeOpaque(right)
        return provider.digest(writer.bytes)
    }

    /// The tree hash of a node with the given leaves blanked and dropped from every
    /// `unmerged_leaves` list (the "original sibling tree hash" of RFC 9420 §7.9).
    public mutating func treeHash(
        _ index: NodeIndex,
        excluding excluded: Set<LeafIndex>,
        _ provider: CipherSuiteProvider
    ) -> [UInt8] {
        if excluded.isEmpty || !excluded.contains(where: { TreeMath.isInSubtree($0.node, of: index) }) {
            return treeHash(index, provider)
        }
        if index.isLeaf {
            var writer = MLSWriter(capacity: 8)
            writer.writeUInt8(1)
            writer.writeUInt32(index.value / 2)
            writer.writeUInt8(0)
            return provider.digest(writer.bytes)
        }
        let left = treeHash(TreeMath.left(index), excluding: excluded, provider)
        let right = treeHash(TreeMath.right(index), excluding: excluded, provider)
        var parentNode = nodes[Int(index.value)]?.parentNode
        parentNode?.unmergedLeaves.removeAll { excluded.contains($0) }
        return Self.parentHashInputDigest(parentNode, left, right, provider)
    }

    /// `Hash(ParentHashInput)` for a parent node with the given sibling tree hash.
    public static func parentHash(
        encryptionKey: [UInt8],
        parentHash: [UInt8],
        originalSiblingTreeHash: [UInt8],
        _ provider: CipherSuiteProvider
    ) -> [UInt8] {
        var writer = MLSWriter(capacity: 128)
        writer.writeOpaque(encryptionKey)
        writer.writeOpaque(parentHash)
        writer.writeOpaque(originalSiblingTreeHash)
        return provider.digest(writer.bytes)
    }
}
