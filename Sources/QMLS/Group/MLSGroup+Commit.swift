// MARK: - Creating commits and Welcomes (RFC 9420 §12.4.1)

extension MLSGroup {
    /// Everything the key schedule produced for a new epoch.
    struct EpochTransition {
        var context: GroupContext
        var joinerSecret: [UInt8]
        var pskSecret: [UInt8]?
        var secrets: EpochSecrets
        var confirmationTag: [UInt8]
    }

    /// Transcript hash and key schedule for the epoch a commit starts.
    func transition(
        provisional: GroupContext,
        commitSecret: [UInt8],
        authenticated: AuthenticatedContent,
        psks: [PreSharedKeyID],
        initSecret: [UInt8]
    ) throws(MLSError) -> EpochTransition {
        var next = provisional
        next.confirmedTranscriptHash = KeySchedule.confirmedTranscriptHash(
            provider,
            interim: interimTranscriptHash,
            commit: authenticated
        )
        let encoded = next.mlsEncoded
        let joiner = KeySchedule.joinerSecret(
            provider,
            initSecret: initSecret,
            commitSecret: commitSecret,
            groupContext: encoded
        )
        let pskSecret = KeySchedule.pskSecret(provider, psks: try resolvePSKs(psks))
        let secrets = KeySchedule.epochSecrets(
            provider,
            joinerSecret: joiner,
            pskSecret: pskSecret,
            groupContext: encoded
        )
        let tag = KeySchedule.confirmationTag(
            provider,
            confirmationKey: secrets.confirmationKey,
            confirmedTranscriptHash: next.confirmedTranscriptHash
        )
        return EpochTransition(
            context: next,
            joinerSecret: joiner,
            pskSecret: pskSecret,
            secrets: secrets,
            confirmationTag: tag
        )
    }

    /// The state of the new epoch.
    func successor(
        _ transition: EpochTransition,
        tree newTree: RatchetTree,
        privateKeys newKeys: TreePrivateKeys,
        signingKey newSigningKey: SignaturePrivateKey,
        reinit: ReInit?
    ) -> MLSGroup {
        var next = MLSGroup(
            provider: provider,
            configuration: configuration,
            context: transition.context,
            tree: newTree,
            privateKeys: newKeys,
            signingKey: newSigningKey,
            secrets: transition.secrets,
            confirmationTag: transition.confirmationTag,
            resumptionPSKs: resumptionPSKs,
            pskStore: pskStore
        )
        if let reinit {
            next.status = .waitingForReInit(reinit)
        }
        let retention = max(configuration.pastEpochRetention, 0)
        if retention > 0 {
            let snapshot = PastEpoch(
                context: context,
                senderDataSecret: secrets.senderDataSecret,
                secretTree: secretTree,
                members: .tree(tree)
            )
            next.pastEpochs = Array((pastEpochs + [snapshot]).suffix(retention))
        }
        return next
    }

    /// Creates a commit covering the given changes and the pending proposals, with its Welcome
    /// and GroupInfo. The epoch does not change until ``mergePendingCommit()``.
    public mutating func commit(_ options: CommitOptions = CommitOptions()) throws(MLSError) -> CommitOutput {
        try requireActive()
        var byValue: [Proposal] = options.adds.map { .add($0) } + options.removes.map { .remove($0) }
        byValue += options.preSharedKeys.map { .preSharedKey($0) }
        if let extensions = options.groupContextExtensions {
            byValue.append(.groupContextExtensions(extensions))
        }
        if let reinit = options.reinit {
            byValue.append(.reinit(reinit))
        }
        var list: [(proposal: Proposal, sender: Sender)] = byValue.map { ($0, .member(ownLeaf)) }
        var references: [ProposalOrRef] = []
        if options.includePendingProposals && options.reinit == nil {
            for (reference, cached) in selectPendingProposals(excluding: options.removes) {
                list.append((cached.proposal, cached.sender))
                references.append(.reference(reference))
            }
        }
        let orderedProposals = references + byValue.map { ProposalOrRef.proposal($0) }
        let orderedList = Array(list.suffix(references.count)) + Array(list.prefix(byValue.count))
        return try createCommit(
            list: orderedList,
            proposals: orderedProposals,
            options: options,
            pskPurpose: .normal
        )
    }

    /// Cached proposals a commit by this member can include: no own Updates, no Remove of this
    /// member, and for each leaf a Remove in preference to the most recent Update.
    private func selectPendingProposals(excluding removes: [LeafIndex]) -> [([UInt8], CachedProposal)] {
        let sorted = proposals.sorted { $0.value.order < $1.value.order }
        var removedLeaves = Set(removes)
        for (_, cached) in sorted {
            if case .remove(let leaf) = cached.proposal {
                removedLeaves.insert(leaf)
            }
        }
        var latestUpdate: [LeafIndex: Int] = [:]
        for (position, entry) in sorted.enumerated() {
            if case .update = entry.value.proposal, case .member(let leaf) = entry.value.sender {
                latestUpdate[leaf] = position
            }
        }
        var seenRemoves = Set(removes)
        var out: [([UInt8], CachedProposal)] = []
        for (position, entry) in sorted.enumerated() {
            switch entry.value.proposal {
            case .update:
                guard case .member(let leaf) = entry.value.sender, leaf != ownLeaf,
                    !removedLeaves.contains(leaf), latestUpdate[leaf] == position
                else {
                    continue
                }
            case .remove(let leaf):
                guard leaf != ownLeaf, seenRemoves.insert(leaf).inserted else {
                    continue
                }
            case .reinit, .externalInit:
                continue
            default:
                break
            }
            out.append((entry.key, entry.value))
        }
        return out
    }

    /// The shared body of regular, reinit and branch commits.
    mutating func createCommit(
        list: [(proposal: Proposal, sender: Sender)],
        proposals orderedProposals: [ProposalOrRef],
        options: CommitOptions,
        pskPurpose: PSKPurpose
    ) throws(MLSError) -> CommitOutput {
        guard context.epoch < UInt64.max else {
            throw .invalidCommit("the epoch counter is exhausted")
        }
        var application = try applyProposals(list, committer: .member(ownLeaf), pskPurpose: pskPurpose)
        let newSigningKey = options.newSigningKey ?? signingKey
        var provisional = context
        provisional.epoch += 1
        provisional.extensions = application.extensions
        var newKeys = privateKeys
        var commitSecret = [UInt8](repeating: 0, count: provider.hashLength)
        var pathSecrets: [UInt32: [UInt8]] = [:]
        var path: UpdatePath?
        if application.pathRequired || options.forcePath {
            guard var template = application.tree.leaf(ownLeaf) else {
                throw .inactiveGroup("own leaf is blank")
            }
            template.signatureKey = newSigningKey.publicKey
            if let credential = options.newCredential {
                template.credential = credential
            }
            let excluded = Set(application.added.map(\.index))
            let base = provisional
            let created = try TreeKEM.createPath(
                provider,
                tree: &application.tree,
                sender: ownLeaf,
                leafTemplate: template,
                signingKey: newSigningKey,
                groupID: context.groupID,
                excluded: excluded,
                context: { hash in
                    var candidate = base
                    candidate.treeHash = hash
                    return candidate.mlsEncoded
                }
            )
            try validateLeafNode(
                created.path.leafNode,
                role: .commit(ownLeaf),
                tree: tree,
                extensions: application.extensions
            )
            newKeys = created.privateKeys
            commitSecret = created.commitSecret
            pathSecrets = created.pathSecrets
            path = created.path
        } else {
            newKeys.prune(against: application.tree)
        }
        provisional.treeHash = application.tree.rootHash(provider)
        let content = FramedContent(
            groupID: context.groupID,
            epoch: context.epoch,
            sender: .member(ownLeaf),
            authenticatedData: options.authenticatedData,
            body: .commit(Commit(proposals: orderedProposals, path: path))
        )
        let wireFormat = configuration.handshakeWireFormat
        let signature = try MessageProtection.sign(
            provider,
            key: signingKey,
            wireFormat: wireFormat,
            content: content,
            context: context
        )
        let unsignedAuth = FramedContentAuthData(signature: signature, confirmationTag: nil)
        let transcriptInput = AuthenticatedContent(wireFormat: wireFormat, content: content, auth: unsignedAuth)
        let transition = try transition(
            provisional: provisional,
            commitSecret: commitSecret,
            authenticated: transcriptInput,
            psks: application.psks,
            initSecret: secrets.initSecret
        )
        // Protect with the old epoch's keys (consumes a handshake generation when private).
        let auth = FramedContentAuthData(signature: signature, confirmationTag: transition.confirmationTag)
        let message = try protectSigned(content, auth: auth, wireFormat: wireFormat)
        let next = successor(
            transition,
            tree: application.tree,
            privateKeys: newKeys,
            signingKey: newSigningKey,
            reinit: application.reinit
        )
        let groupInfo = try next.makeGroupInfo(includeRatchetTree: configuration.ratchetTreeInWelcome)
        var welcome: [UInt8]?
        if !application.added.isEmpty {
            welcome = try next.makeWelcome(
                groupInfo: groupInfo,
                joinerSecret: transition.joinerSecret,
                pskSecret: transition.pskSecret,
                psks: application.psks,
                newMembers: application.added,
                pathSecrets: pathSecrets
            )
        }
        let summary = CommitSummary(
            committer: .member(ownLeaf),
            newEpoch: next.epoch,
            added: application.added.map(\.index),
            removed: application.removed,
            updated: application.updated,
            reinit: application.reinit
        )
        let messageBytes = message.mlsEncoded
        pendingCommit = PendingCommit(
            next: next,
            confirmationTag: transition.confirmationTag,
            message: messageBytes,
            summary: summary
        )
        return CommitOutput(
            commit: messageBytes,
            welcome: welcome,
            groupInfo: MLSMessage(body: .groupInfo(groupInfo)).mlsEncoded,
            summary: summary
        )
    }

    /// Protects already-signed content.
    private mutating func protectSigned(
        _ content: FramedContent,
        auth: FramedContentAuthData,
        wireFormat: WireFormat
    ) throws(MLSError) -> MLSMessage {
        switch wireFormat {
        case .publicMessage:
            let tag = MessageProtection.membershipTag(
                provider,
                membershipKey: secrets.membershipKey,
                content: content,
                auth: auth,
                context: context
            )
            return MLSMessage(body: .publicMessage(PublicMessage(content: content, auth: auth, membershipTag: tag)))
        default:
            let message = try MessageProtection.encrypt(
                provider,
                content: content,
                auth: auth,
                senderDataSecret: secrets.senderDataSecret,
                secretTree: &secretTree,
                paddingLength: 0
            )
            return MLSMessage(body: .privateMessage(message))
        }
    }

    // MARK: GroupInfo and Welcome

    /// A signed GroupInfo for the current epoch, with `external_pub` and optionally the tree.
    public func makeGroupInfo(includeRatchetTree: Bool) throws(MLSError) -> GroupInfo {
        let external: HPKEKeyPair
        do {
            external = try provider.deriveHPKEKeyPair(ikm: secrets.externalSecret)
        } catch {
            throw .crypto(error)
        }
        var extensions: [Extension] = []
        var pubWriter = MLSWriter()
        pubWriter.writeOpaque(external.publicKey)
        extensions.append(Extension(type: .externalPub, data: pubWriter.bytes))
        if includeRatchetTree {
            extensions.append(Extension(type: .ratchetTree, data: tree.wireNodes.mlsEncoded))
        }
        var info = GroupInfo(
            groupContext: context,
            extensions: extensions,
            confirmationTag: confirmationTag,
            signer: ownLeaf,
            signature: []
        )
        do {
            info.signature = try provider.signWithLabel(signingKey, label: "GroupInfoTBS", content: info.toBeSigned)
        } catch {
            throw .crypto(error)
        }
        return info
    }

    /// The GroupInfo of the current epoch as an MLSMessage, for external joiners.
    public func groupInfoMessage(includeRatchetTree: Bool = true) throws(MLSError) -> [UInt8] {
        MLSMessage(body: .groupInfo(try makeGroupInfo(includeRatchetTree: includeRatchetTree))).mlsEncoded
    }

    private func makeWelcome(
        groupInfo: GroupInfo,
        joinerSecret: [UInt8],
        pskSecret: [UInt8]?,
        psks: [PreSharedKeyID],
        newMembers: [(index: LeafIndex, keyPackage: KeyPackage)],
        pathSecrets: [UInt32: [UInt8]]
    ) throws(MLSError) -> [UInt8] {
        let welcomeSecret = KeySchedule.welcomeSecret(provider, joinerSecret: joinerSecret, pskSecret: pskSecret)
        let (key, nonce) = KeySchedule.welcomeKeyAndNonce(provider, welcomeSecret: welcomeSecret)
        let encryptedGroupInfo: [UInt8]
        do {
            encryptedGroupInfo = try provider.seal(key: key, nonce: nonce, aad: [], plaintext: groupInfo.mlsEncoded)
        } catch {
            throw .crypto(error)
        }
        var entries: [EncryptedGroupSecrets] = []
        let infoHash = provider.encryptWithLabelInfoHash(label: "Welcome", context: encryptedGroupInfo)
        for (index, keyPackage) in newMembers {
            let ancestor = TreeMath.commonAncestor(ownLeaf.node, index.node)
            let secrets = GroupSecrets(joinerSecret: joinerSecret, pathSecret: pathSecrets[ancestor.value], psks: psks)
            do {
                let sealed = try provider.encryptWithLabel(
                    publicKey: keyPackage.initKey,
                    infoHash: infoHash,
                    plaintext: secrets.mlsEncoded
                )
                entries.append(
                    EncryptedGroupSecrets(
                        newMember: keyPackage.reference(provider: provider),
                        encryptedGroupSecrets: sealed
                    )
                )
            } catch {
                throw .crypto(error)
            }
        }
        let welcome = Welcome(cipherSuite: provider.suite, secrets: entries, encryptedGroupInfo: encryptedGroupInfo)
        return MLSMessage(body: .welcome(welcome)).mlsEncoded
    }
}
