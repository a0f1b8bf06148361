// MARK: - Processing received messages (RFC 9420 §6, §12.4.2)

extension MLSGroup {
    /// A received message whose sender and signature have been verified.
    struct Verified {
        var authenticated: AuthenticatedContent
        var step: SecretTree.Step?
        var content: FramedContent {
            authenticated.content
        }
    }

    /// Processes a received MLSMessage (PublicMessage or PrivateMessage). On any error the
    /// state is unchanged.
    public mutating func process(_ bytes: [UInt8]) throws(MLSError) -> ProcessedMessage {
        if let pending = pendingCommit, pending.message == bytes {
            let next = pending.next
            let summary =
                pending.summary
                ?? CommitSummary(
                    committer: .member(ownLeaf),
                    newEpoch: next.epoch,
                    added: [],
                    removed: [],
                    updated: [],
                    reinit: nil
                )
            try mergePendingCommit()
            return .commit(summary)
        }
        let message: MLSMessage
        do {
            message = try MLSMessage(mlsDecoding: bytes)
        } catch {
            throw .codec(error)
        }
        return try process(message)
    }

    /// Processes a decoded MLSMessage.
    public mutating func process(_ message: MLSMessage) throws(MLSError) -> ProcessedMessage {
        if case .privateMessage(let priv) = message.body, priv.contentType == .application, priv.groupID == groupID,
            priv.epoch < context.epoch
        {
            return try processPastEpochApplication(priv)
        }
        if status == .removed {
            guard case .privateMessage(let priv) = message.body, priv.contentType == .application else {
                throw .inactiveGroup("this member was removed from the group")
            }
        }
        let verified = try unprotect(message)
        switch verified.content.body {
        case .application(let data):
            guard case .member(let sender) = verified.content.sender, let step = verified.step else {
                throw .unexpectedMessage("application data outside a PrivateMessage")
            }
            secretTree.apply(step)
            return .application(
                ApplicationMessage(
                    sender: sender,
                    data: data,
                    authenticatedData: verified.content.authenticatedData,
                    epoch: verified.content.epoch
                )
            )
        case .proposal(let proposal):
            try validateProposal(proposal, sender: verified.content.sender)
            let reference = proposalReference(verified.authenticated)
            if let step = verified.step {
                secretTree.apply(step)
            }
            proposals[reference] = CachedProposal(
                proposal: proposal,
                sender: verified.content.sender,
                order: proposals.count
            )
            return .proposal(ProposalSummary(reference: reference, proposal: proposal, sender: verified.content.sender))
        case .commit(let commit):
            var next = self
            if let step = verified.step {
                next.secretTree.apply(step)
            }
            let result = try next.applyCommit(commit, verified: verified)
            self = result.state
            return result.event
        }
    }

    /// An application message of a retained past epoch (RFC 9420 §15.3).
    private mutating func processPastEpochApplication(_ message: PrivateMessage) throws(MLSError) -> ProcessedMessage {
        guard let index = pastEpochs.firstIndex(where: { $0.context.epoch == message.epoch }) else {
            throw .wrongEpoch(expected: context.epoch, received: message.epoch)
        }
        let past = pastEpochs[index]
        let own = ownLeaf
        let opened = try MessageProtection.decrypt(
            provider,
            message: message,
            senderDataSecret: past.senderDataSecret,
            secretTree: past.secretTree,
            limits: configuration.ratchetLimits,
            isMember: { $0 != own && past.signatureKey($0) != nil }
        )
        guard case .member(let sender) = opened.content.sender, case .application(let data) = opened.content.body,
            let key = past.signatureKey(sender)
        else {
            throw .unexpectedMessage("only application data is accepted for a past epoch")
        }
        let authenticated = AuthenticatedContent(
            wireFormat: .privateMessage,
            content: opened.content,
            auth: opened.auth
        )
        guard MessageProtection.verify(provider, publicKey: key, authenticated: authenticated, context: past.context)
        else {
            throw .invalidSignature("message content")
        }
        pastEpochs[index].secretTree.apply(opened.step)
        return .application(
            ApplicationMessage(
                sender: sender,
                data: data,
                authenticatedData: message.authenticatedData,
                epoch: message.epoch
            )
        )
    }

    // MARK: Unprotecting

    /// Checks group, epoch, wire format, membership tag or decryption, and signature.
    func unprotect(_ message: MLSMessage) throws(MLSError) -> Verified {
        switch message.body {
        case .publicMessage(let pub):
            try checkGroupAndEpoch(pub.content.groupID, pub.content.epoch)
            let authenticated = AuthenticatedContent(wireFormat: .publicMessage, content: pub.content, auth: pub.auth)
            let (key, signatureContext) = try signatureKey(for: pub.content)
            if case .member = pub.content.sender {
                guard case .application = pub.content.body else {
                    guard let tag = pub.membershipTag else {
                        throw .invalidMembershipTag
                    }
                    let expected = MessageProtection.membershipTag(
                        provider,
                        membershipKey: secrets.membershipKey,
                        content: pub.content,
                        auth: pub.auth,
                        context: context
                    )
                    guard ConstantTime.equal(expected, tag) else {
                        throw .invalidMembershipTag
                    }
                    try verifySignature(authenticated, key: key, context: signatureContext)
                    return Verified(authenticated: authenticated, step: nil)
                }
                throw .unexpectedMessage("application data in a PublicMessage")
            }
            try verifySignature(authenticated, key: key, context: signatureContext)
            return Verified(authenticated: authenticated, step: nil)
        case .privateMessage(let priv):
            try checkGroupAndEpoch(priv.groupID, priv.epoch)
            let own = ownLeaf
            let currentTree = tree
            let opened = try MessageProtection.decrypt(
                provider,
                message: priv,
                senderDataSecret: secrets.senderDataSecret,
                secretTree: secretTree,
                limits: configuration.ratchetLimits,
                isMember: { $0 != own && currentTree.leaf($0) != nil }
            )
            let authenticated = AuthenticatedContent(
                wireFormat: .privateMessage,
                content: opened.content,
                auth: opened.auth
            )
            let (key, signatureContext) = try signatureKey(for: opened.content)
            try verifySignature(authenticated, key: key, context: signatureContext)
            return Verified(authenticated: authenticated, step: opened.step)
        case .welcome, .groupInfo, .keyPackage:
            throw .unexpectedMessage("a \(message.wireFormat.rawValue) message is not processed by a group")
        }
    }

    private func checkGroupAndEpoch(_ groupID: [UInt8], _ messageEpoch: UInt64) throws(MLSError) {
        guard groupID == context.groupID else {
            throw .wrongGroup
        }
        guard messageEpoch == context.epoch else {
            throw .wrongEpoch(expected: context.epoch, received: messageEpoch)
        }
    }

    private func verifySignature(
        _ authenticated: AuthenticatedContent,
        key: [UInt8],
        context signatureContext: GroupContext?
    ) throws(MLSError) {
        guard
            MessageProtection.verify(provider, publicKey: key, authenticated: authenticated, context: signatureContext)
        else {
            throw .invalidSignature("message content")
        }
    }

    /// The key that must have signed `content`, and the context its signature covers.
    private func signatureKey(for content: FramedContent) throws(MLSError) -> ([UInt8], GroupContext?) {
        switch content.sender {
        case .member(let leaf):
            guard let node = tree.leaf(leaf) else {
                throw .invalidSender("\(leaf) is not a member")
            }
            return (node.signatureKey, context)
        case .external(let index):
            guard case .proposal = content.body else {
                throw .invalidSender("external senders may only send proposals")
            }
            let senders = try externalSenders()
            guard Int(index) < senders.count else {
                throw .invalidSender("no external sender \(index)")
            }
            return (senders[Int(index)].signatureKey, nil)
        case .newMemberProposal:
            guard case .proposal(.add(let keyPackage)) = content.body else {
                throw .invalidSender("new_member_proposal messages must carry an Add")
            }
            return (keyPackage.leafNode.signatureKey, nil)
        case .newMemberCommit:
            guard case .commit(let commit) = content.body, let path = commit.path else {
                throw .invalidSender("new_member_commit messages must carry a commit with a path")
            }
            return (path.leafNode.signatureKey, context)
        }
    }

    // MARK: Commits

    private func applyCommit(
        _ commit: Commit,
        verified: Verified
    ) throws(MLSError) -> (state: MLSGroup, event: ProcessedMessage) {
        let committer = verified.content.sender
        guard let tag = verified.authenticated.auth.confirmationTag else {
            throw .invalidCommit("commit without confirmation tag")
        }
        guard context.epoch < UInt64.max else {
            throw .invalidCommit("the epoch counter is exhausted")
        }
        var list: [(proposal: Proposal, sender: Sender)] = []
        for entry in commit.proposals {
            switch entry {
            case .proposal(let proposal):
                list.append((proposal, committer))
            case .reference(let reference):
                guard committer != .newMemberCommit else {
                    throw .invalidCommit("external commits may not refer to proposals")
                }
                guard let cached = proposals[reference] else {
                    throw .invalidCommit("commit refers to an unknown proposal")
                }
                list.append((cached.proposal, cached.sender))
            }
        }
        var application = try applyProposals(list, committer: committer)
        if application.pathRequired && commit.path == nil {
            throw .invalidCommit("the proposals require an UpdatePath")
        }
        let sender: LeafIndex
        switch committer {
        case .member(let leaf):
            sender = leaf
        case .newMemberCommit:
            guard let path = commit.path else {
                throw .invalidCommit("external commit without a path")
            }
            sender = application.tree.nextFreeLeaf
            try validateLeafNode(
                path.leafNode,
                role: .commit(sender),
                tree: application.tree,
                extensions: application.extensions
            )
            if let removed = application.removed.first, let old = tree.leaf(removed) {
                guard old.credential.type == path.leafNode.credential.type else {
                    throw .credentialRejected("the external joiner's leaf cannot replace the removed one")
                }
            }
            application.tree.addLeaf(path.leafNode)
        default:
            throw .invalidSender("this sender cannot commit")
        }
        var newKeys = privateKeys
        if application.updated.contains(ownLeaf) {
            guard let updatedLeaf = application.tree.leaf(ownLeaf),
                let key = pendingUpdateKeys[updatedLeaf.encryptionKey]
            else {
                throw .invalidCommit("commit applies an Update of this member that it did not send")
            }
            newKeys.leafKey = key
        }
        var provisional = context
        provisional.epoch += 1
        provisional.extensions = application.extensions
        let removedSelf = application.removed.contains(ownLeaf)
        var commitSecret = [UInt8](repeating: 0, count: provider.hashLength)
        if let path = commit.path {
            if committer != .newMemberCommit {
                try validateLeafNode(
                    path.leafNode,
                    role: .commit(sender),
                    tree: application.tree,
                    extensions: application.extensions
                )
            }
            let excluded = Set(application.added.map(\.index))
            try TreeKEM.applyPath(provider, tree: &application.tree, sender: sender, path: path, excluded: excluded)
            provisional.treeHash = application.tree.rootHash(provider)
            if !removedSelf {
                newKeys.prune(against: application.tree)
                let decrypted = try TreeKEM.decryptPath(
                    provider,
                    tree: application.tree,
                    sender: sender,
                    path: path,
                    privateKeys: newKeys,
                    excluded: excluded,
                    context: provisional.mlsEncoded
                )
                commitSecret = decrypted.commitSecret
                newKeys = decrypted.privateKeys
            }
        } else {
            provisional.treeHash = application.tree.rootHash(provider)
            newKeys.prune(against: application.tree)
        }
        var initSecret = secrets.initSecret
        if let kemOutput = application.externalInit {
            do {
                let external = try provider.deriveHPKEKeyPair(ikm: secrets.externalSecret)
                initSecret = try provider.hpkeExportReceiver(
                    privateKey: external.privateKey,
                    kemOutput: kemOutput,
                    info: [],
                    exporterContext: KeySchedule.externalInitLabel,
                    length: provider.hashLength
                )
            } catch {
                throw .crypto(error)
            }
        }
        var transcriptInput = verified.authenticated
        transcriptInput.auth.confirmationTag = nil
        let summary = CommitSummary(
            committer: committer,
            newEpoch: provisional.epoch,
            added: application.added.map(\.index),
            removed: application.removed,
            updated: application.updated,
            reinit: application.reinit
        )
        if removedSelf {
            // The new epoch's secrets are not reachable; keep the old epoch for late messages.
            var removed = self
            removed.status = .removed
            removed.pendingCommit = nil
            return (removed, .removed(summary))
        }
        let transition = try transition(
            provisional: provisional,
            commitSecret: commitSecret,
            authenticated: transcriptInput,
            psks: application.psks,
            initSecret: initSecret
        )
        guard ConstantTime.equal(transition.confirmationTag, tag) else {
            throw .invalidConfirmationTag
        }
        let next = successor(
            transition,
            tree: application.tree,
            privateKeys: newKeys,
            signingKey: signingKey,
            reinit: application.reinit
        )
        return (next, .commit(summary))
    }

}
