import Testing

@testable import QMLS

/// tree-validation.json, tree-operations.json and treekem.json.
@Suite("MLS vectors: ratchet tree")
struct TreeVectorTests {
    static func tree(_ bytes: [UInt8]) throws -> RatchetTree {
        try RatchetTree(try RatchetTreeNodes(mlsDecoding: bytes))
    }

    @Test("tree-validation.json: resolutions, tree hashes, parent hashes and leaf signatures")
    func treeValidation() throws {
        var tally = VectorTally("tree-validation.json")
        for (index, vector) in try TestVectors.load("tree-validation.json").enumerated() {
            let suite = vector.suite
            guard let provider = try? CipherSuiteProvider(suite) else {
                tally.skip(suite: suite.rawValue)
                continue
            }
            let check = CaseCheck("tree-validation[\(index)] suite \(suite.rawValue)")
            check.run("tree") {
                var tree = try Self.tree(try vector.hex("tree"))
                let groupID = try vector.hex("group_id")
                let resolutions = vector["resolutions"] as? [[Int]] ?? []
                let hashes = vector["tree_hashes"] as? [String] ?? []
                check.expect(resolutions.count == tree.nodes.count, "one resolution per node")
                for (i, expected) in resolutions.enumerated() {
                    let got = tree.resolution(NodeIndex(UInt32(i))).map { Int($0.value) }
                    check.expect(got == expected, "resolution(\(i))")
                }
                for (i, expected) in hashes.enumerated() {
                    check.expect(
                        tree.treeHash(NodeIndex(UInt32(i)), provider) == [UInt8](hex: expected),
                        "tree hash \(i)"
                    )
                }
                try tree.verifyParentHashes(provider)
                try tree.verifyStructure()
                for (leafIndex, leaf) in tree.members {
                    check.expect(
                        leaf.verifySignature(provider: provider, groupID: groupID, leafIndex: leafIndex),
                        "signature of \(leafIndex)"
                    )
                }
            }
            tally.record(check)
        }
        tally.report()
    }

    @Test("tree-operations.json: add, update and remove produce the expected tree and hashes")
    func treeOperations() throws {
        var tally = VectorTally("tree-operations.json")
        for (index, vector) in try TestVectors.load("tree-operations.json").enumerated() {
            let suite = vector.suite
            guard let provider = try? CipherSuiteProvider(suite) else {
                tally.skip(suite: suite.rawValue)
                continue
            }
            let check = CaseCheck("tree-operations[\(index)]")
            check.run("operation") {
                var tree = try Self.tree(try vector.hex("tree_before"))
                check.expect(tree.rootHash(provider) == (try vector.hex("tree_hash_before")), "tree_hash_before")
                let sender = LeafIndex(UInt32(try vector.int("proposal_sender")))
                switch try Proposal(mlsDecoding: try vector.hex("proposal")) {
                case .add(let keyPackage):
                    tree.addLeaf(keyPackage.leafNode)
                case .update(let leaf):
                    tree.updateLeaf(sender, leaf)
                case .remove(let removed):
                    tree.removeLeaf(removed)
                    tree.truncate()
                default:
                    check.expect(false, "unexpected proposal type")
                }
                check.expect(tree.wireNodes.mlsEncoded == (try vector.hex("tree_after")), "tree_after")
                check.expect(tree.rootHash(provider) == (try vector.hex("tree_hash_after")), "tree_hash_after")
            }
            tally.record(check)
        }
        tally.report()
    }

    @Test("treekem.json: process every UpdatePath for every member, then create and process our own")
    func treeKEM() throws {
        var tally = VectorTally("treekem.json")
        for (index, vector) in try TestVectors.load("treekem.json").enumerated() {
            let suite = vector.suite
            guard let provider = try? CipherSuiteProvider(suite) else {
                tally.skip(suite: suite.rawValue)
                continue
            }
            let check = CaseCheck("treekem[\(index)] suite \(suite.rawValue)")
            check.run("treekem") {
                try Self.runTreeKEM(vector, provider, check)
            }
            tally.record(check)
        }
        tally.report()
    }

    static func runTreeKEM(_ vector: [String: Any], _ provider: CipherSuiteProvider, _ check: CaseCheck) throws {
        let suite = provider.suite
        let groupID = try vector.hex("group_id")
        let epoch = UInt64(try vector.int("epoch"))
        let confirmed = try vector.hex("confirmed_transcript_hash")
        var tree = try Self.tree(try vector.hex("ratchet_tree"))
        try tree.verifyParentHashes(provider)
        func context(_ treeHash: [UInt8]) -> [UInt8] {
            GroupContext(
                cipherSuite: suite,
                groupID: groupID,
                epoch: epoch,
                treeHash: treeHash,
                confirmedTranscriptHash: confirmed,
                extensions: []
            ).mlsEncoded
        }
        var privates: [UInt32: TreePrivateKeys] = [:]
        var signers: [UInt32: SignaturePrivateKey] = [:]
        for entry in try vector.objects("leaves_private") {
            let leaf = LeafIndex(UInt32(try entry.int("index")))
            var keys = TreePrivateKeys(ownLeaf: leaf, leafKey: try entry.hex("encryption_priv"))
            check.expect(
                try provider.hpkePublicKey(privateKey: keys.leafKey) == tree.leaf(leaf)?.encryptionKey,
                "leaf key of \(leaf)"
            )
            for secret in try entry.objects("path_secrets") {
                let node = UInt32(try secret.int("node"))
                let pair = try TreeKEM.nodeKeyPair(provider, pathSecret: try secret.hex("path_secret"))
                check.expect(tree.parent(NodeIndex(node))?.encryptionKey == pair.publicKey, "path key \(node)")
                keys.pathKeys[node] = pair
            }
            privates[leaf.value] = keys
            signers[leaf.value] = try provider.signaturePrivateKey(try entry.hex("signature_priv"))
        }
        for update in try vector.objects("update_paths") {
            let sender = LeafIndex(UInt32(try update.int("sender")))
            let path = try UpdatePath(mlsDecoding: try update.hex("update_path"))
            var merged = tree
            try TreeKEM.applyPath(provider, tree: &merged, sender: sender, path: path, excluded: [])
            let mergedHash = merged.rootHash(provider)
            check.expect(mergedHash == (try update.hex("tree_hash_after")), "tree_hash_after for \(sender)")
            check.expect(
                path.leafNode.verifySignature(provider: provider, groupID: groupID, leafIndex: sender),
                "leaf signature of \(sender)"
            )
            let expectedSecrets = update["path_secrets"] as? [Any] ?? []
            for (leaf, keys) in privates where leaf != sender.value {
                let result = try TreeKEM.decryptPath(
                    provider,
                    tree: merged,
                    sender: sender,
                    path: path,
                    privateKeys: keys,
                    excluded: [],
                    context: context(mergedHash)
                )
                check.expect(result.commitSecret == (try update.hex("commit_secret")), "commit secret at \(leaf)")
                if Int(leaf) < expectedSecrets.count, let hex = expectedSecrets[Int(leaf)] as? String {
                    check.expect(result.pathSecret == [UInt8](hex: hex), "path secret at \(leaf)")
                }
            }
            // Our own UpdatePath from the same sender must be processable by every other member.
            guard let signer = signers[sender.value], let template = tree.leaf(sender) else {
                continue
            }
            var ours = tree
            let created = try TreeKEM.createPath(
                provider,
                tree: &ours,
                sender: sender,
                leafTemplate: template,
                signingKey: signer,
                groupID: groupID,
                excluded: [],
                context: context
            )
            var theirs = tree
            try TreeKEM.applyPath(provider, tree: &theirs, sender: sender, path: created.path, excluded: [])
            check.expect(theirs.rootHash(provider) == ours.rootHash(provider), "receivers merge our path identically")
            try theirs.verifyParentHashes(provider)
            for (leaf, keys) in privates where leaf != sender.value {
                let result = try TreeKEM.decryptPath(
                    provider,
                    tree: theirs,
                    sender: sender,
                    path: created.path,
                    privateKeys: keys,
                    excluded: [],
                    context: context(theirs.rootHash(provider))
                )
                check.expect(result.commitSecret == created.commitSecret, "our commit secret at \(leaf)")
            }
        }
    }
}
