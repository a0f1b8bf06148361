// MARK: - Array-based tree arithmetic (RFC 9420 Appendix C)

/// Index arithmetic for the left-balanced binary trees of MLS, stored as arrays with leaves at
/// even positions. `leafCount` is always a power of two in a ratchet tree.
public enum TreeMath {
    /// The exponent of the largest power of two not above `x` (0 for 0).
    static func log2(_ x: UInt32) -> Int {
        x == 0 ? 0 : 31 - x.leadingZeroBitCount
    }

    /// The level of a node: 0 for leaves, one more than its children otherwise.
    public static func level(_ x: NodeIndex) -> Int {
        (~x.value).trailingZeroBitCount
    }

    /// The number of array entries for a tree with `leafCount` leaves.
    public static func nodeWidth(_ leafCount: UInt32) -> UInt32 {
        leafCount == 0 ? 0 : 2 * (leafCount - 1) + 1
    }

    /// The root of a tree with `leafCount` leaves.
    public static func root(_ leafCount: UInt32) -> NodeIndex {
        let width = nodeWidth(leafCount)
        return NodeIndex((UInt32(1) << UInt32(log2(width))) - 1)
    }

    /// The left child of a parent node.
    public static func left(_ x: NodeIndex) -> NodeIndex {
        let k = level(x)
        precondition(k > 0, "leaf has no children")
        return NodeIndex(x.value ^ (1 << UInt32(k - 1)))
    }

    /// The right child of a parent node.
    public static func right(_ x: NodeIndex) -> NodeIndex {
        let k = level(x)
        precondition(k > 0, "leaf has no children")
        return NodeIndex(x.value ^ (3 << UInt32(k - 1)))
    }

    /// The parent of a non-root node.
    public static func parent(_ x: NodeIndex, leafCount: UInt32) -> NodeIndex {
        precondition(x != root(leafCount), "root has no parent")
        let k = UInt32(level(x))
        let b = (x.value >> (k + 1)) & 1
        return NodeIndex((x.value | (1 << k)) ^ (b << (k + 1)))
    }

    /// The other child of a non-root node's parent.
    public static func sibling(_ x: NodeIndex, leafCount: UInt32) -> NodeIndex {
        let p = parent(x, leafCount: leafCount)
        return x < p ? right(p) : left(p)
    }

    /// The direct path of a node, from its parent up to the root.
    public static func directPath(_ x: NodeIndex, leafCount: UInt32) -> [NodeIndex] {
        let r = root(leafCount)
        var path: [NodeIndex] = []
        var node = x
        while node != r {
            node = parent(node, leafCount: leafCount)
            path.append(node)
        }
        return path
    }

    /// The copath of a node: its sibling and the siblings of its direct path, excluding the root.
    public static func copath(_ x: NodeIndex, leafCount: UInt32) -> [NodeIndex] {
        let r = root(leafCount)
        var out: [NodeIndex] = []
        var node = x
        while node != r {
            out.append(sibling(node, leafCount: leafCount))
            node = parent(node, leafCount: leafCount)
        }
        return out
    }

    /// Whether `descendant` is in the subtree rooted at `ancestor` (a node is its own descendant).
    public static func isInSubtree(_ descendant: NodeIndex, of ancestor: NodeIndex) -> Bool {
        let k = UInt32(level(ancestor))
        let span = UInt32(1) << k
        let low = ancestor.value &- (span - 1)
        let high = ancestor.value &+ (span - 1)
        return descendant.value >= low && descendant.value <= high
    }

    /// The lowest node whose subtree holds both `x` and `y`.
    public static func commonAncestor(_ x: NodeIndex, _ y: NodeIndex) -> NodeIndex {
        let lx = UInt32(level(x) + 1)
        let ly = UInt32(level(y) + 1)
        if lx <= ly && (x.value >> ly) == (y.value >> ly) {
            return y
        }
        if ly <= lx && (x.value >> lx) == (y.value >> lx) {
            return x
        }
        var xn = x.value
        var yn = y.value
        var k: UInt32 = 0
        while xn != yn {
            xn >>= 1
            yn >>= 1
            k += 1
        }
        return NodeIndex((xn << k) + (1 << (k - 1)) - 1)
    }
}
