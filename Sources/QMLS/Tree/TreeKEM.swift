// MARK: - TreeKEM (RFC 9420 §7.4–7.6)

/// Creating and processing UpdatePaths over a ratchet tree.
enum TreeKEM {
    /// The outcome of creating an UpdatePath.
    struct Created: Sendable {
        var path: UpdatePath
        var commitSecret: [UInt8]
        /// Path secret of each node on the committer's filtered direct path (for Welcomes).
        var pathSecrets: [UInt32: [UInt8]]
        var privateKeys: TreePrivateKeys
    }

    /// The node key pair for a path secret.
    static func nodeKeyPair(_ provider: CipherSuiteProvider, pathSecret: [UInt8]) throws(MLSError) -> HPKEKeyPair {
        do {
            return try provider.deriveHPKEKeyPair(ikm: provider.deriveSecret(secret: pathSecret, label: "node"))
        } catch {
            throw .crypto(error)
        }
    }

    /// Sets the filtered direct path of `sender` to the given keys and computes parent hashes
    /// top-down. Returns the parent hash the sender's leaf must carry.
    static func mergePath(
        _ provider: CipherSuiteProvider,
        tree: inout RatchetTree,
        sender: LeafIndex,
        keys: [[UInt8]]
    ) -> [UInt8] {
        tree.blankDirectPath(sender)
        let filtered = tree.filteredDirectPath(sender)
        precondition(filtered.count == keys.count, "path length checked by the caller")
        var above: [UInt8] = []
        for index in stride(from: filtered.count - 1, through: 0, by: -1) {
            let entry = filtered[index]
            let node = ParentNode(encryptionKey: keys[index], parentHash: above, unmergedLeaves: [])
            tree.setParent(entry.node, node)
            above = RatchetTree.parentHash(
                encryptionKey: keys[index],
                parentHash: above,
                originalSiblingTreeHash: tree.treeHash(entry.copathChild, provider),
                provider
            )
        }
        return above
    }

    /// Replaces the committer's path and leaf and encrypts new path secrets to the group.
    ///
    /// `leafTemplate` supplies the signature key, credential, capabilities and extensions of the
    /// new leaf; `context` maps the new tree hash to the encoded provisional GroupContext.
    static func createPath(
        _ provider: CipherSuiteProvider,
        tree: inout RatchetTree,
        sender: LeafIndex,
        leafTemplate: LeafNode,
        signingKey: SignaturePrivateKey,
        groupID: [UInt8],
        excluded: Set<LeafIndex>,
        context: ([UInt8]) -> [UInt8]
    ) throws(MLSError) -> Created {
        let leafKeys: HPKEKeyPair
        do {
            leafKeys = try provider.generateHPKEKeyPair()
        } catch {
            throw .crypto(error)
        }
        tree.blankDirectPath(sender)
        let filtered = tree.filteredDirectPath(sender)
        var secrets: [[UInt8]] = []
        var keyPairs: [HPKEKeyPair] = []
        var secret = provider.randomBytes(provider.hashLength)
        for _ in filtered {
            secrets.append(secret)
            keyPairs.append(try nodeKeyPair(provider, pathSecret: secret))
            secret = provider.deriveSecret(secret: secret, label: "path")
        }
        let commitSecret = secret
        let leafParentHash = mergePath(provider, tree: &tree, sender: sender, keys: keyPairs.map(\.publicKey))
        var leaf = leafTemplate
        leaf.encryptionKey = leafKeys.publicKey
        leaf.source = .commit(parentHash: leafParentHash)
        do {
            try leaf.sign(with: signingKey, provider: provider, groupID: groupID, leafIndex: sender)
        } catch {
            throw .crypto(error)
        }
        tree.setLeaf(sender, leaf)
        let encodedContext = context(tree.rootHash(provider))
        let infoHash = provider.encryptWithLabelInfoHash(label: "UpdatePathNode", context: encodedContext)
        var nodes: [UpdatePathNode] = []
        for (index, entry) in filtered.enumerated() {
            var ciphertexts: [HPKECiphertext] = []
            for target in tree.resolution(entry.copathChild) where !(target.isLeaf && excluded.contains(target.leaf)) {
                guard let key = tree.node(target)?.encryptionKey else {
                    continue
                }
                do {
                    ciphertexts.append(
                        try provider.encryptWithLabel(publicKey: key, infoHash: infoHash, plaintext: secrets[index])
                    )
                } catch {
                    throw .crypto(error)
                }
            }
            nodes.append(UpdatePathNode(encryptionKey: keyPairs[index].publicKey, encryptedPathSecret: ciphertexts))
        }
        var privateKeys = TreePrivateKeys(ownLeaf: sender, leafKey: leafKeys.privateKey)
        var pathSecrets: [UInt32: [UInt8]] = [:]
        for (index, entry) in filtered.enumerated() {
            privateKeys.pathKeys[entry.node.value] = keyPairs[index]
            pathSecrets[entry.node.value] = secrets[index]
        }
        return Created(
            path: UpdatePath(leafNode: leaf, nodes: nodes),
            commitSecret: commitSecret,
            pathSecrets: pathSecrets,
            privateKeys: privateKeys
        )
    }

    /// Checks an UpdatePath's shape against the tree and merges it (public part).
    /// The caller has validated the leaf node itself.
    static func applyPath(
        _ provider: CipherSuiteProvider,
        tree: inout RatchetTree,
        sender: LeafIndex,
        path: UpdatePath,
        excluded: Set<LeafIndex>
    ) throws(MLSError) {
        let filtered = tree.filteredDirectPath(sender)
        guard path.nodes.count == filtered.count else {
            throw .invalidCommit("UpdatePath has \(path.nodes.count) nodes, the filtered direct path \(filtered.count)")
        }
        for (index, entry) in filtered.enumerated() {
            let expected = tree.resolution(entry.copathChild).filter { !($0.isLeaf && excluded.contains($0.leaf)) }
                .count
            guard path.nodes[index].encryptedPathSecret.count == expected else {
                throw .invalidCommit("UpdatePath node \(index) has the wrong number of ciphertexts")
            }
        }
        var existing = Set<[UInt8]>()
        for (index, node) in tree.nodes.enumerated() where index != Int(sender.node.value) {
            if let key = node?.encryptionKey {
                existing.insert(key)
            }
        }
        var fresh = Set<[UInt8]>()
        for key in path.nodes.map(\.encryptionKey) + [path.leafNode.encryptionKey] {
            guard provider.isValidHPKEPublicKey(key) else {
                throw .invalidCommit("UpdatePath carries an invalid public key")
            }
            guard !existing.contains(key), fresh.insert(key).inserted else {
                throw .invalidCommit("UpdatePath reuses an encryption key already in the tree")
            }
        }
        let leafParentHash = mergePath(provider, tree: &tree, sender: sender, keys: path.nodes.map(\.encryptionKey))
        guard path.leafNode.parentHash == leafParentHash else {
            throw .invalidCommit("the committer's leaf node has the wrong parent hash")
        }
        tree.setLeaf(sender, path.leafNode)
    }

    /// Decrypts the path secret meant for this member from a merged UpdatePath, checks the
    /// derived public keys, and returns the commit secret and this member's new private keys.
    static func decryptPath(
        _ provider: CipherSuiteProvider,
        tree: RatchetTree,
        sender: LeafIndex,
        path: UpdatePath,
        privateKeys: TreePrivateKeys,
        excluded: Set<LeafIndex>,
        context: [UInt8]
    ) throws(MLSError) -> (commitSecret: [UInt8], privateKeys: TreePrivateKeys, pathSecret: [UInt8]) {
        let filtered = tree.filteredDirectPath(sender)
        let me = privateKeys.ownLeaf.node
        guard let start = filtered.firstIndex(where: { TreeMath.isInSubtree(me, of: $0.copathChild) }) else {
            throw .invalidCommit("no node of the UpdatePath covers this member")
        }
        let resolution = tree.resolution(filtered[start].copathChild).filter {
            !($0.isLeaf && excluded.contains($0.leaf))
        }
        var found: (Int, [UInt8])?
        for (position, node) in resolution.enumerated() {
            if let key = privateKeys.privateKey(for: node) {
                found = (position, key)
                break
            }
        }
        guard let (position, key) = found, position < path.nodes[start].encryptedPathSecret.count else {
            throw .invalidCommit("this member holds no key for the UpdatePath's ciphertexts")
        }
        var secret: [UInt8]
        do {
            secret = try provider.decryptWithLabel(
                privateKey: key,
                label: "UpdatePathNode",
                context: context,
                ciphertext: path.nodes[start].encryptedPathSecret[position]
            )
        } catch {
            throw .crypto(error)
        }
        let firstSecret = secret
        var updated = privateKeys
        for index in start..<filtered.count {
            let pair = try nodeKeyPair(provider, pathSecret: secret)
            guard pair.publicKey == path.nodes[index].encryptionKey else {
                throw .invalidCommit("a derived path key does not match the UpdatePath")
            }
            updated.pathKeys[filtered[index].node.value] = pair
            secret = provider.deriveSecret(secret: secret, label: "path")
        }
        updated.prune(against: tree)
        return (secret, updated, firstSecret)
    }

    /// Private keys a joiner derives from the path secret of its lowest common ancestor with the
    /// committer (RFC 9420 §12.4.3.1).
    static func joinerPathKeys(
        _ provider: CipherSuiteProvider,
        tree: RatchetTree,
        committer: LeafIndex,
        joiner: LeafIndex,
        pathSecret: [UInt8]
    ) throws(MLSError) -> [UInt32: HPKEKeyPair] {
        let ancestor = TreeMath.commonAncestor(committer.node, joiner.node)
        let filtered = tree.filteredDirectPath(committer)
        guard let start = filtered.firstIndex(where: { $0.node == ancestor }) else {
            throw .invalidWelcome("the common ancestor with the committer is not on its filtered path")
        }
        var keys: [UInt32: HPKEKeyPair] = [:]
        var secret = pathSecret
        for index in start..<filtered.count {
            let pair = try nodeKeyPair(provider, pathSecret: secret)
            guard tree.parent(filtered[index].node)?.encryptionKey == pair.publicKey else {
                throw .invalidWelcome("the path secret does not match the tree")
            }
            keys[filtered[index].node.value] = pair
            secret = provider.deriveSecret(secret: secret, label: "path")
        }
        return keys
    }
}
