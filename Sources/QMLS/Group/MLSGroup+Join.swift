// MARK: - Joining: Welcome (RFC 9420 §12.4.3.1) and external commits (§12.4.3.2)

extension MLSGroup {
    /// Joins a group from a Welcome addressed to one of this client's key packages.
    ///
    /// - Parameters:
    ///   - welcome: the MLSMessage carrying the Welcome.
    ///   - keyPackage: the key package and private keys the Welcome was encrypted to.
    ///   - ratchetTree: the tree, when the GroupInfo does not carry the `ratchet_tree` extension.
    ///   - psks: PSKs the Welcome may name.
    public static func join(
        welcome bytes: [UInt8],
        keyPackage bundle: KeyPackageBundle,
        ratchetTree: RatchetTreeNodes? = nil,
        psks: PSKStore = PSKStore(),
        linkedGroup: MLSGroup? = nil,
        configuration: MLSGroupConfiguration = MLSGroupConfiguration()
    ) throws(MLSError) -> MLSGroup {
        let message: MLSMessage
        do {
            message = try MLSMessage(mlsDecoding: bytes)
        } catch {
            throw .codec(error)
        }
        guard case .welcome(let welcome) = message.body else {
            throw .unexpectedMessage("not a Welcome")
        }
        let suite = bundle.keyPackage.cipherSuite
        guard welcome.cipherSuite == suite else {
            throw .invalidWelcome("the Welcome's cipher suite differs from the key package's")
        }
        let provider: CipherSuiteProvider
        do {
            provider = try CipherSuiteProvider(suite)
        } catch {
            throw .crypto(error)
        }
        let reference = bundle.keyPackage.reference(provider: provider)
        guard let entry = welcome.secrets.first(where: { $0.newMember == reference }) else {
            throw .invalidWelcome("the Welcome has no secrets for this key package")
        }
        let groupSecrets: GroupSecrets
        do {
            let plain = try provider.decryptWithLabel(
                privateKey: bundle.initPrivateKey,
                label: "Welcome",
                context: welcome.encryptedGroupInfo,
                ciphertext: entry.encryptedGroupSecrets
            )
            groupSecrets = try GroupSecrets(mlsDecoding: plain)
        } catch let error as MLSCryptoError {
            throw .crypto(error)
        } catch let error as MLSCodecError {
            throw .codec(error)
        } catch {
            throw .invalidWelcome("group secrets")
        }
        let special = groupSecrets.psks.filter {
            if case .resumption(let usage, _, _) = $0.kind {
                return usage != .application
            }
            return false
        }
        guard special.count <= 1, groupSecrets.psks.count <= Int(UInt16.max) else {
            throw .invalidWelcome("more than one reinit or branch PSK, or too many PSKs")
        }
        var pskValues: [(id: PreSharedKeyID, secret: [UInt8])] = []
        for id in groupSecrets.psks {
            guard let secret = psks.entries[id.kind.storeKey] else {
                throw .missingPSK("the Welcome names a PSK that is not available")
            }
            pskValues.append((id, secret))
        }
        let pskSecret = KeySchedule.pskSecret(provider, psks: pskValues)
        let welcomeSecret = KeySchedule.welcomeSecret(
            provider,
            joinerSecret: groupSecrets.joinerSecret,
            pskSecret: pskSecret
        )
        let (key, nonce) = KeySchedule.welcomeKeyAndNonce(provider, welcomeSecret: welcomeSecret)
        let groupInfo: GroupInfo
        do {
            let plain = try provider.open(key: key, nonce: nonce, aad: [], ciphertext: welcome.encryptedGroupInfo)
            groupInfo = try GroupInfo(mlsDecoding: plain)
        } catch let error as MLSCodecError {
            throw .codec(error)
        } catch {
            throw .invalidWelcome("the GroupInfo does not decrypt")
        }
        guard groupInfo.groupContext.cipherSuite == suite else {
            throw .invalidWelcome("GroupInfo cipher suite differs from the key package's")
        }
        if let linkPSK = special.first, case .resumption(let usage, let oldGroupID, let oldEpoch) = linkPSK.kind {
            guard groupInfo.groupContext.epoch == 1 else {
                throw .invalidWelcome("a reinit or branch Welcome must start at epoch 1")
            }
            guard let linked = linkedGroup, linked.groupID == oldGroupID, linked.epoch == oldEpoch else {
                throw .invalidWelcome("a reinit or branch Welcome needs the state of the group it continues")
            }
            let newContext = groupInfo.groupContext
            switch usage {
            case .reinit:
                guard case .waitingForReInit(let reinit) = linked.status, reinit.groupID == newContext.groupID,
                    reinit.version == newContext.version, reinit.cipherSuite == newContext.cipherSuite,
                    reinit.extensions == newContext.extensions
                else {
                    throw .invalidWelcome("the new group does not match the committed ReInit")
                }
            case .branch:
                guard linked.context.version == newContext.version, linked.cipherSuite == newContext.cipherSuite else {
                    throw .invalidWelcome("a branch keeps the version and cipher suite")
                }
            case .application:
                break
            }
        }
        let tree = try verifiedTree(groupInfo: groupInfo, given: ratchetTree, provider: provider)
        guard let ownLeaf = tree.members.first(where: { $0.leaf == bundle.keyPackage.leafNode })?.index else {
            throw .invalidWelcome("the tree does not contain this key package's leaf node")
        }
        var privateKeys = TreePrivateKeys(ownLeaf: ownLeaf, leafKey: bundle.encryptionPrivateKey)
        if let pathSecret = groupSecrets.pathSecret {
            privateKeys.pathKeys = try TreeKEM.joinerPathKeys(
                provider,
                tree: tree,
                committer: groupInfo.signer,
                joiner: ownLeaf,
                pathSecret: pathSecret
            )
        }
        let secrets = KeySchedule.epochSecrets(
            provider,
            joinerSecret: groupSecrets.joinerSecret,
            pskSecret: pskSecret,
            groupContext: groupInfo.groupContext.mlsEncoded
        )
        let expectedTag = KeySchedule.confirmationTag(
            provider,
            confirmationKey: secrets.confirmationKey,
            confirmedTranscriptHash: groupInfo.groupContext.confirmedTranscriptHash
        )
        guard ConstantTime.equal(expectedTag, groupInfo.confirmationTag) else {
            throw .invalidConfirmationTag
        }
        var group = MLSGroup(
            provider: provider,
            configuration: configuration,
            context: groupInfo.groupContext,
            tree: tree,
            privateKeys: privateKeys,
            signingKey: bundle.signingKey,
            secrets: secrets,
            confirmationTag: groupInfo.confirmationTag,
            pskStore: psks.entries
        )
        try group.validateJoinedTree()
        group.pskStore = psks.entries
        return group
    }

    /// The tree from the GroupInfo's extension (or the one given), checked against the
    /// GroupInfo's tree hash, parent hashes, structure and signature.
    static func verifiedTree(
        groupInfo: GroupInfo,
        given: RatchetTreeNodes?,
        provider: CipherSuiteProvider
    ) throws(MLSError) -> RatchetTree {
        guard !groupInfo.extensions.hasDuplicateTypes, !groupInfo.groupContext.extensions.hasDuplicateTypes else {
            throw .invalidWelcome("duplicate extensions in the GroupInfo")
        }
        guard groupInfo.groupContext.epoch < UInt64.max, groupInfo.groupContext.version == .mls10 else {
            throw .invalidWelcome("unusable epoch or protocol version in the GroupInfo")
        }
        var wire = given
        if let data = groupInfo.extensions.data(of: .ratchetTree) {
            do {
                wire = try RatchetTreeNodes(mlsDecoding: data)
            } catch {
                throw .codec(error)
            }
        }
        guard let wire else {
            throw .invalidWelcome("no ratchet tree: neither in the GroupInfo nor given")
        }
        var tree = try RatchetTree(wire)
        guard tree.rootHash(provider) == groupInfo.groupContext.treeHash else {
            throw .invalidTree("the tree hash does not match the GroupInfo")
        }
        try tree.verifyParentHashes(provider)
        try tree.verifyStructure()
        guard let signer = tree.leaf(groupInfo.signer) else {
            throw .invalidWelcome("the GroupInfo signer is not a member")
        }
        guard
            provider.verifyWithLabel(
                publicKey: signer.signatureKey,
                label: "GroupInfoTBS",
                content: groupInfo.toBeSigned,
                signature: groupInfo.signature
            )
        else {
            throw .invalidSignature("GroupInfo")
        }
        return tree
    }

    /// Leaf validation of every member of a tree this client is joining.
    func validateJoinedTree() throws(MLSError) {
        for (index, leaf) in tree.members {
            try validateTreeLeaf(leaf, at: index, tree: tree, extensions: context.extensions)
        }
    }

    /// Joins a group by an external commit, from a GroupInfo carrying `external_pub`.
    /// Returns the joined group (already in the new epoch) and the commit to send.
    ///
    /// - Parameter removing: this client's previous leaf, for a "resync" commit.
    public static func joinExternally(
        groupInfo bytes: [UInt8],
        ratchetTree: RatchetTreeNodes? = nil,
        credential: Credential,
        signingKey: SignaturePrivateKey,
        capabilities: Capabilities? = nil,
        leafExtensions: [Extension] = [],
        removing: LeafIndex? = nil,
        preSharedKeys: [PreSharedKeyID] = [],
        psks: PSKStore = PSKStore(),
        authenticatedData: [UInt8] = [],
        configuration: MLSGroupConfiguration = MLSGroupConfiguration()
    ) throws(MLSError) -> (group: MLSGroup, commit: [UInt8]) {
        let message: MLSMessage
        do {
            message = try MLSMessage(mlsDecoding: bytes)
        } catch {
            throw .codec(error)
        }
        guard case .groupInfo(let groupInfo) = message.body else {
            throw .unexpectedMessage("not a GroupInfo")
        }
        let provider: CipherSuiteProvider
        do {
            provider = try CipherSuiteProvider(groupInfo.groupContext.cipherSuite)
        } catch {
            throw .crypto(error)
        }
        let tree = try verifiedTree(groupInfo: groupInfo, given: ratchetTree, provider: provider)
        guard let pubData = groupInfo.extensions.data(of: .externalPub) else {
            throw .invalidWelcome("the GroupInfo has no external_pub extension")
        }
        let externalPub: [UInt8]
        do {
            var reader = MLSReader(pubData)
            externalPub = try reader.readOpaque()
            try reader.finish()
        } catch {
            throw .codec(error)
        }
        let exported: (kemOutput: [UInt8], secret: [UInt8])
        do {
            exported = try provider.hpkeExportSender(
                publicKey: externalPub,
                info: [],
                exporterContext: KeySchedule.externalInitLabel,
                length: provider.hashLength
            )
        } catch {
            throw .crypto(error)
        }
        // The old epoch as seen from outside: no secrets, only context, tree and transcript.
        let placeholder = [UInt8](repeating: 0, count: provider.hashLength)
        let blankSecrets = EpochSecrets(
            senderDataSecret: placeholder,
            encryptionSecret: placeholder,
            exporterSecret: placeholder,
            externalSecret: placeholder,
            confirmationKey: placeholder,
            membershipKey: placeholder,
            resumptionPSK: placeholder,
            epochAuthenticator: placeholder,
            initSecret: placeholder
        )
        var outside = MLSGroup(
            provider: provider,
            configuration: configuration,
            context: groupInfo.groupContext,
            tree: tree,
            privateKeys: TreePrivateKeys(ownLeaf: LeafIndex(UInt32.max), leafKey: []),
            signingKey: signingKey,
            secrets: blankSecrets,
            confirmationTag: groupInfo.confirmationTag,
            pskStore: psks.entries
        )
        outside.resumptionPSKs = []
        try outside.validateJoinedTree()
        var list: [(proposal: Proposal, sender: Sender)] = [
            (.externalInit(kemOutput: exported.kemOutput), .newMemberCommit)
        ]
        if let removing {
            list.append((.remove(removing), .newMemberCommit))
        }
        list += preSharedKeys.map { (.preSharedKey($0), .newMemberCommit) }
        var application = try outside.applyProposals(list, committer: .newMemberCommit)
        var template = LeafNode(
            encryptionKey: [],
            signatureKey: signingKey.publicKey,
            credential: credential,
            capabilities: capabilities ?? KeyPackageBundle.defaultCapabilities(provider.suite),
            source: .update,
            extensions: leafExtensions,
            signature: []
        )
        let treeBeforeJoin = application.tree
        let ownLeaf = application.tree.addLeaf(template)
        var provisional = groupInfo.groupContext
        provisional.epoch += 1
        provisional.extensions = application.extensions
        let base = provisional
        let created = try TreeKEM.createPath(
            provider,
            tree: &application.tree,
            sender: ownLeaf,
            leafTemplate: template,
            signingKey: signingKey,
            groupID: groupInfo.groupContext.groupID,
            excluded: [],
            context: { hash in
                var candidate = base
                candidate.treeHash = hash
                return candidate.mlsEncoded
            }
        )
        template = created.path.leafNode
        if let removing, let old = tree.leaf(removing) {
            guard old.credential.type == template.credential.type else {
                throw .credentialRejected("the new leaf cannot replace the removed one")
            }
        }
        try outside.validateLeafNode(
            template,
            role: .commit(ownLeaf),
            tree: treeBeforeJoin,
            extensions: application.extensions
        )
        provisional.treeHash = application.tree.rootHash(provider)
        let proposalsByValue = list.map { ProposalOrRef.proposal($0.proposal) }
        let content = FramedContent(
            groupID: groupInfo.groupContext.groupID,
            epoch: groupInfo.groupContext.epoch,
            sender: .newMemberCommit,
            authenticatedData: authenticatedData,
            body: .commit(Commit(proposals: proposalsByValue, path: created.path))
        )
        let signature = try MessageProtection.sign(
            provider,
            key: signingKey,
            wireFormat: .publicMessage,
            content: content,
            context: groupInfo.groupContext
        )
        let transcriptInput = AuthenticatedContent(
            wireFormat: .publicMessage,
            content: content,
            auth: FramedContentAuthData(signature: signature, confirmationTag: nil)
        )
        let transition = try outside.transition(
            provisional: provisional,
            commitSecret: created.commitSecret,
            authenticated: transcriptInput,
            psks: application.psks,
            initSecret: exported.secret
        )
        let auth = FramedContentAuthData(signature: signature, confirmationTag: transition.confirmationTag)
        let commit = MLSMessage(body: .publicMessage(PublicMessage(content: content, auth: auth, membershipTag: nil)))
        let group = outside.successor(
            transition,
            tree: application.tree,
            privateKeys: created.privateKeys,
            signingKey: signingKey,
            reinit: nil
        )
        return (group, commit.mlsEncoded)
    }
}
