// MARK: - Secret tree

/// The per-epoch tree of encryption secrets (RFC 9420 §9), derived lazily from the
/// `encryption_secret`. Consumed node secrets are dropped as soon as their children exist.
///
/// Receiving is two-phase: ``prepare(leaf:kind:generation:limits:)`` computes the key and the
/// resulting state without touching the tree, and ``apply(_:)`` stores it once the message has
/// been authenticated, so a forged message consumes nothing.
struct SecretTree: Sendable, Equatable {
    let leafCount: UInt32
    private var nodeSecrets: [UInt32: [UInt8]]
    private var handshake: [UInt32: SenderRatchet]
    private var application: [UInt32: SenderRatchet]

    init(encryptionSecret: [UInt8], leafCount: UInt32) {
        self.leafCount = leafCount
        nodeSecrets = [TreeMath.root(leafCount).value: encryptionSecret]
        handshake = [:]
        application = [:]
    }

    /// A pending change to the tree: the ratchets of one leaf after one key was taken.
    struct Step: Sendable {
        let leaf: LeafIndex
        let keys: KeyAndNonce
        fileprivate let removedNodes: [UInt32]
        fileprivate let addedNodes: [(UInt32, [UInt8])]
        fileprivate let handshake: SenderRatchet?
        fileprivate let application: SenderRatchet?
    }

    private func ratchets(
        for leaf: LeafIndex,
        _ provider: CipherSuiteProvider
    ) throws(MLSError) -> (
        handshake: SenderRatchet, application: SenderRatchet, removed: [UInt32], added: [(UInt32, [UInt8])], fresh: Bool
    ) {
        guard leaf.value < leafCount else {
            throw .invalidSender("leaf \(leaf.value) is outside the tree")
        }
        if let h = handshake[leaf.value], let a = application[leaf.value] {
            return (h, a, [], [], false)
        }
        // Walk up from the leaf to the nearest stored secret, then derive down.
        var path: [NodeIndex] = []
        var current = leaf.node
        let root = TreeMath.root(leafCount)
        while nodeSecrets[current.value] == nil {
            guard current != root else {
                throw .ratchetWindow("the secrets of \(leaf) were already consumed")
            }
            path.append(current)
            current = TreeMath.parent(current, leafCount: leafCount)
        }
        guard var secret = nodeSecrets[current.value] else {
            throw .ratchetWindow("the secrets of \(leaf) were already consumed")
        }
        var removed: [UInt32] = [current.value]
        var added: [(UInt32, [UInt8])] = []
        for child in path.reversed() {
            let left = TreeMath.left(current)
            let right = TreeMath.right(current)
            let leftSecret = provider.expandWithLabel(
                secret: secret,
                label: "tree",
                context: Array("left".utf8),
                length: provider.hashLength
            )
            let rightSecret = provider.expandWithLabel(
                secret: secret,
                label: "tree",
                context: Array("right".utf8),
                length: provider.hashLength
            )
            if child == left {
                added.append((right.value, rightSecret))
                secret = leftSecret
            } else {
                added.append((left.value, leftSecret))
                secret = rightSecret
            }
            current = child
        }
        if current != leaf.node {
            preconditionFailure("secret tree walk did not reach the leaf")
        }
        if !removed.contains(current.value) {
            removed.append(current.value)
        }
        let h = SenderRatchet(
            secret: provider.expandWithLabel(
                secret: secret,
                label: "handshake",
                context: [],
                length: provider.hashLength
            )
        )
        let a = SenderRatchet(
            secret: provider.expandWithLabel(
                secret: secret,
                label: "application",
                context: [],
                length: provider.hashLength
            )
        )
        return (h, a, removed, added, true)
    }

    /// Computes the key for a received message without changing the tree.
    func prepare(
        leaf: LeafIndex,
        kind: RatchetKind,
        generation: UInt32,
        limits: RatchetLimits,
        _ provider: CipherSuiteProvider
    ) throws(MLSError) -> Step {
        var state = try ratchets(for: leaf, provider)
        let keys: KeyAndNonce
        switch kind {
        case .handshake:
            keys = try state.handshake.consume(provider, generation: generation, limits: limits)
        case .application:
            keys = try state.application.consume(provider, generation: generation, limits: limits)
        }
        return Step(
            leaf: leaf,
            keys: keys,
            removedNodes: state.removed,
            addedNodes: state.added,
            handshake: state.fresh || kind == .handshake ? state.handshake : nil,
            application: state.fresh || kind == .application ? state.application : nil
        )
    }

    /// Stores the result of ``prepare(leaf:kind:generation:limits:_:)``.
    mutating func apply(_ step: Step) {
        for node in step.removedNodes {
            nodeSecrets.removeValue(forKey: node)
        }
        for (node, secret) in step.addedNodes {
            nodeSecrets[node] = secret
        }
        if let h = step.handshake {
            handshake[step.leaf.value] = h
        }
        if let a = step.application {
            application[step.leaf.value] = a
        }
    }

    /// The key of the next generation of our own ratchet, for sending.
    mutating func nextSendingKey(
        leaf: LeafIndex,
        kind: RatchetKind,
        _ provider: CipherSuiteProvider
    ) throws(MLSError) -> (generation: UInt32, keys: KeyAndNonce) {
        let state = try ratchets(for: leaf, provider)
        var h = state.handshake
        var a = state.application
        let result: (UInt32, KeyAndNonce)
        switch kind {
        case .handshake:
            result = try h.nextForSending(provider)
        case .application:
            result = try a.nextForSending(provider)
        }
        for node in state.removed {
            nodeSecrets.removeValue(forKey: node)
        }
        for (node, secret) in state.added {
            nodeSecrets[node] = secret
        }
        handshake[leaf.value] = h
        application[leaf.value] = a
        return result
    }

    /// The key and nonce of one generation for a leaf, deriving as needed (test vectors only:
    /// this keeps every generation derived so far).
    mutating func keyForTesting(
        leaf: LeafIndex,
        kind: RatchetKind,
        generation: UInt32,
        _ provider: CipherSuiteProvider
    ) throws(MLSError) -> KeyAndNonce {
        let limits = RatchetLimits(outOfOrderWindow: Int.max, maximumForwardDistance: UInt32.max)
        let step = try prepare(leaf: leaf, kind: kind, generation: generation, limits: limits, provider)
        apply(step)
        return step.keys
    }
}

extension SecretTree: MLSCodable {
    func encode(to writer: inout MLSWriter) {
        writer.writeUInt32(leafCount)
        writer.writeVector { w in
            for (node, secret) in nodeSecrets.sorted(by: { $0.key < $1.key }) {
                w.writeUInt32(node)
                w.writeOpaque(secret)
            }
        }
        for ratchets in [handshake, application] {
            writer.writeVector { w in
                for (leaf, ratchet) in ratchets.sorted(by: { $0.key < $1.key }) {
                    w.writeUInt32(leaf)
                    w.write(ratchet)
                }
            }
        }
    }

    init(from reader: inout MLSReader) throws(MLSCodecError) {
        leafCount = try reader.readUInt32()
        let secrets = try reader.readVector { (r: inout MLSReader) throws(MLSCodecError) -> (UInt32, [UInt8]) in
            (try r.readUInt32(), try r.readOpaque())
        }
        nodeSecrets = Dictionary(secrets, uniquingKeysWith: { first, _ in first })
        let h = try reader.readVector { (r: inout MLSReader) throws(MLSCodecError) -> (UInt32, SenderRatchet) in
            (try r.readUInt32(), try r.read(SenderRatchet.self))
        }
        let a = try reader.readVector { (r: inout MLSReader) throws(MLSCodecError) -> (UInt32, SenderRatchet) in
            (try r.readUInt32(), try r.read(SenderRatchet.self))
        }
        handshake = Dictionary(h, uniquingKeysWith: { first, _ in first })
        application = Dictionary(a, uniquingKeysWith: { first, _ in first })
    }
}
