// MARK: - Applying a proposal list (RFC 9420 §12.2, §12.3)

/// The new tree and group context extensions after a commit's proposals, with what they did.
struct ProposalApplication: Sendable {
    var tree: RatchetTree
    var extensions: [Extension]
    var added: [(index: LeafIndex, keyPackage: KeyPackage)] = []
    var removed: [LeafIndex] = []
    var updated: [LeafIndex] = []
    var psks: [PreSharedKeyID] = []
    var externalInit: [UInt8]?
    var reinit: ReInit?
    var pathRequired: Bool
}

extension MLSGroup {
    /// Which PSK usages a commit may inject besides `application`.
    enum PSKPurpose {
        case normal
        case reinit
        case branch
    }

    /// Validates a proposal list for a commit by `committer` and applies it to a copy of the tree.
    func applyProposals(
        _ list: [(proposal: Proposal, sender: Sender)],
        committer: Sender,
        pskPurpose: PSKPurpose = .normal
    ) throws(MLSError) -> ProposalApplication {
        let isExternal: Bool
        let committerLeaf: LeafIndex?
        switch committer {
        case .member(let leaf):
            isExternal = false
            committerLeaf = leaf
        case .newMemberCommit:
            isExternal = true
            committerLeaf = nil
        case .external, .newMemberProposal:
            throw .invalidSender("only members and new members can commit")
        }
        var result = ProposalApplication(
            tree: tree,
            extensions: context.extensions,
            pathRequired: list.isEmpty || list.contains { $0.proposal.requiresPath }
        )
        var updates: [(LeafIndex, LeafNode)] = []
        var removes: [LeafIndex] = []
        var adds: [KeyPackage] = []
        var gce: [Extension]?
        var touched = Set<LeafIndex>()
        var pskIDs = Set<PreSharedKeyID>()
        for (proposal, sender) in list {
            switch proposal {
            case .externalInit(let kemOutput):
                guard isExternal, result.externalInit == nil else {
                    throw .invalidProposal("ExternalInit outside an external commit, or more than one")
                }
                result.externalInit = kemOutput
            case .update(let leaf):
                guard !isExternal else {
                    throw .invalidProposal("external commits may not carry Update proposals")
                }
                guard case .member(let index) = sender else {
                    throw .invalidProposal("Update proposal from a non-member")
                }
                guard index != committerLeaf else {
                    throw .invalidProposal("a commit may not cover the committer's own Update")
                }
                guard touched.insert(index).inserted else {
                    throw .invalidProposal("two Update or Remove proposals for \(index)")
                }
                updates.append((index, leaf))
            case .remove(let index):
                guard index != committerLeaf else {
                    throw .invalidProposal("a commit may not remove the committer")
                }
                guard tree.leaf(index) != nil else {
                    throw .invalidProposal("Remove of \(index), which is blank")
                }
                guard touched.insert(index).inserted else {
                    throw .invalidProposal("two Update or Remove proposals for \(index)")
                }
                if isExternal && !removes.isEmpty {
                    throw .invalidProposal("an external commit may carry at most one Remove")
                }
                removes.append(index)
            case .add(let keyPackage):
                guard !isExternal else {
                    throw .invalidProposal("external commits may not carry Add proposals")
                }
                adds.append(keyPackage)
            case .preSharedKey(let psk):
                guard psk.nonce.count == provider.hashLength else {
                    throw .invalidProposal("PSK nonce is not KDF.Nh bytes")
                }
                if case .resumption(let usage, _, _) = psk.kind {
                    switch (usage, pskPurpose) {
                    case (.application, _), (.reinit, .reinit), (.branch, .branch):
                        break
                    default:
                        throw .invalidProposal("resumption PSK with usage \(usage) is not allowed here")
                    }
                }
                guard pskIDs.insert(psk).inserted else {
                    throw .invalidProposal("the same PSK twice")
                }
                result.psks.append(psk)
            case .groupContextExtensions(let extensions):
                guard !isExternal else {
                    throw .invalidProposal("external commits may not change extensions")
                }
                guard gce == nil else {
                    throw .invalidProposal("more than one GroupContextExtensions proposal")
                }
                gce = extensions
            case .reinit(let reinit):
                guard !isExternal, list.count == 1 else {
                    throw .invalidProposal("ReInit must be the only proposal of a commit")
                }
                guard reinit.version.rawValue >= context.version.rawValue else {
                    throw .invalidProposal("ReInit to a lower protocol version")
                }
                result.reinit = reinit
            }
        }
        guard result.psks.count <= Int(UInt16.max) else {
            throw .invalidProposal("more PSKs than PSKLabel can count")
        }
        if isExternal && result.externalInit == nil {
            throw .invalidProposal("an external commit needs exactly one ExternalInit")
        }
        if let gce {
            result.extensions = gce
        }
        // Updates, then removes, then adds, in list order.
        for (index, leaf) in updates {
            try validateLeafNode(leaf, role: .update(index), tree: result.tree, extensions: result.extensions)
            result.tree.updateLeaf(index, leaf)
            result.updated.append(index)
        }
        for index in removes {
            result.tree.removeLeaf(index)
            result.removed.append(index)
        }
        result.tree.truncate()
        if !adds.isEmpty {
            var digest = MemberDigest(result.tree)
            for keyPackage in adds {
                try validateKeyPackage(keyPackage, tree: result.tree, extensions: result.extensions, digest: digest)
                let index = result.tree.addLeaf(keyPackage.leafNode)
                digest.insert(keyPackage.leafNode)
                result.added.append((index, keyPackage))
            }
        }
        if gce != nil {
            try validateGroupContextExtensions(result.extensions, tree: result.tree)
        }
        return result
    }

    /// Checks a single received proposal before caching it (RFC 9420 §12.1).
    func validateProposal(_ proposal: Proposal, sender: Sender) throws(MLSError) {
        switch sender {
        case .member:
            break
        case .external:
            switch proposal.type {
            case .add, .remove, .psk, .reinit, .groupContextExtensions:
                break
            default:
                throw .invalidProposal("proposal type \(proposal.type.rawValue) may not come from an external sender")
            }
        case .newMemberProposal:
            guard case .add = proposal else {
                throw .invalidProposal("new_member_proposal senders may only propose Add")
            }
        case .newMemberCommit:
            throw .invalidSender("new_member_commit sender on a proposal")
        }
        switch proposal {
        case .add(let keyPackage):
            try validateKeyPackage(keyPackage, tree: tree, extensions: context.extensions)
        case .update(let leaf):
            guard case .member(let index) = sender else {
                throw .invalidProposal("Update proposal from a non-member")
            }
            try validateLeafNode(leaf, role: .update(index), tree: tree, extensions: context.extensions)
        case .remove(let index):
            guard tree.leaf(index) != nil else {
                throw .invalidProposal("Remove of \(index), which is blank")
            }
        case .preSharedKey(let psk):
            guard psk.nonce.count == provider.hashLength else {
                throw .invalidProposal("PSK nonce is not KDF.Nh bytes")
            }
            if case .resumption(let usage, _, _) = psk.kind, usage != .application {
                throw .invalidProposal("resumption PSK with usage \(usage) in a PreSharedKey proposal")
            }
        case .reinit(let reinit):
            guard reinit.version.rawValue >= context.version.rawValue else {
                throw .invalidProposal("ReInit to a lower protocol version")
            }
        case .externalInit:
            throw .invalidProposal("ExternalInit is only valid inside an external commit")
        case .groupContextExtensions(let extensions):
            try validateGroupContextExtensions(extensions, tree: tree)
        }
    }

    /// The secret of each PSK, in order; throws if one is not available.
    func resolvePSKs(_ ids: [PreSharedKeyID]) throws(MLSError) -> [(id: PreSharedKeyID, secret: [UInt8])] {
        var out: [(id: PreSharedKeyID, secret: [UInt8])] = []
        for id in ids {
            if case .resumption(_, let group, let pskEpoch) = id.kind, group == context.groupID,
                let own = resumptionPSKs.last(where: { $0.epoch == pskEpoch })
            {
                out.append((id, own.secret))
                continue
            }
            guard let secret = pskStore[id.kind.storeKey] else {
                throw .missingPSK("PSK \(id.kind) is not available")
            }
            out.append((id, secret))
        }
        return out
    }

    /// The ProposalRef of a proposal sent in `content`.
    func proposalReference(_ content: AuthenticatedContent) -> [UInt8] {
        provider.refHash(label: "MLS 1.0 Proposal Reference", value: content.mlsEncoded)
    }
}
