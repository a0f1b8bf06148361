// MARK: - Sending proposals and application messages

/// Options for ``MLSGroup/commit(_:)``.
public struct CommitOptions: Sendable {
    /// Key packages to add.
    public var adds: [KeyPackage] = []
    /// Members to remove.
    public var removes: [LeafIndex] = []
    /// PSKs to inject (see ``MLSGroup/externalPSK(id:)``).
    public var preSharedKeys: [PreSharedKeyID] = []
    /// New group context extensions (a GroupContextExtensions proposal).
    public var groupContextExtensions: [Extension]?
    /// Reinitialize the group with these parameters (must be the only proposal).
    public var reinit: ReInit?
    /// Also commit the valid proposals received in this epoch.
    public var includePendingProposals = true
    /// Send an UpdatePath even when the proposals do not require one (an empty commit always
    /// has one).
    public var forcePath = true
    /// Authenticated data of the commit message.
    public var authenticatedData: [UInt8] = []
    /// A different credential or signing key for the committer's new leaf.
    public var newCredential: Credential?
    public var newSigningKey: SignaturePrivateKey?

    public init() {}
}

extension MLSGroup {
    /// A fresh PreSharedKeyID for an external PSK, with a random nonce.
    public func externalPSK(id: [UInt8]) -> PreSharedKeyID {
        PreSharedKeyID(kind: .external(pskID: id), nonce: provider.randomBytes(provider.hashLength))
    }

    /// A fresh PreSharedKeyID for this group's resumption PSK of `epoch`.
    public func resumptionPSKID(epoch pskEpoch: UInt64) -> PreSharedKeyID {
        PreSharedKeyID(
            kind: .resumption(usage: .application, groupID: context.groupID, epoch: pskEpoch),
            nonce: provider.randomBytes(provider.hashLength)
        )
    }

    func requireActive() throws(MLSError) {
        switch status {
        case .active:
            return
        case .removed:
            throw .inactiveGroup("this member was removed from the group")
        case .waitingForReInit:
            throw .inactiveGroup("the group is waiting for reinitialization")
        }
    }

    /// Signs content from this member and protects it with the current epoch's keys.
    mutating func protect(
        _ content: FramedContent,
        confirmationTag: [UInt8]?,
        wireFormat: WireFormat,
        signatureContext: GroupContext? = nil
    ) throws(MLSError) -> (message: MLSMessage, authenticated: AuthenticatedContent) {
        let signature = try MessageProtection.sign(
            provider,
            key: signingKey,
            wireFormat: wireFormat,
            content: content,
            context: signatureContext ?? context
        )
        let auth = FramedContentAuthData(signature: signature, confirmationTag: confirmationTag)
        let authenticated = AuthenticatedContent(wireFormat: wireFormat, content: content, auth: auth)
        switch wireFormat {
        case .publicMessage:
            var membershipTag: [UInt8]?
            if case .member = content.sender {
                membershipTag = MessageProtection.membershipTag(
                    provider,
                    membershipKey: secrets.membershipKey,
                    content: content,
                    auth: auth,
                    context: context
                )
            }
            let message = PublicMessage(content: content, auth: auth, membershipTag: membershipTag)
            return (MLSMessage(body: .publicMessage(message)), authenticated)
        case .privateMessage:
            let message = try MessageProtection.encrypt(
                provider,
                content: content,
                auth: auth,
                senderDataSecret: secrets.senderDataSecret,
                secretTree: &secretTree,
                paddingLength: paddingLength(for: content)
            )
            return (MLSMessage(body: .privateMessage(message)), authenticated)
        default:
            preconditionFailure("not a content wire format: \(wireFormat.rawValue)")
        }
    }

    private func paddingLength(for content: FramedContent) -> Int {
        let block = configuration.paddingBlockSize
        guard block > 1 else {
            return 0
        }
        var writer = MLSWriter()
        content.body.encode(to: &writer)
        let size = writer.bytes.count + provider.hashLength + 8
        return (block - size % block) % block
    }

    // MARK: Application data

    /// Encrypts application data as a PrivateMessage (RFC 9420 §15).
    public mutating func encrypt(_ data: [UInt8], authenticatedData: [UInt8] = []) throws(MLSError) -> [UInt8] {
        try requireActive()
        if proposals.values.contains(where: { $0.sender != .member(ownLeaf) }) {
            throw .unexpectedMessage("proposals were received in this epoch: commit them before sending data")
        }
        let content = FramedContent(
            groupID: context.groupID,
            epoch: context.epoch,
            sender: .member(ownLeaf),
            authenticatedData: authenticatedData,
            body: .application(data)
        )
        return try protect(content, confirmationTag: nil, wireFormat: .privateMessage).message.mlsEncoded
    }

    // MARK: Proposals

    /// Sends a proposal and caches it so that a later commit (by anyone) can cover it.
    public mutating func propose(_ proposal: Proposal, authenticatedData: [UInt8] = []) throws(MLSError) -> [UInt8] {
        try requireActive()
        if case .update = proposal {
            throw .invalidProposal("use proposeUpdate() so that the new leaf's private key is kept")
        }
        try validateProposal(proposal, sender: .member(ownLeaf))
        return try sendProposal(proposal, authenticatedData: authenticatedData)
    }

    /// Proposes replacing this member's leaf with a fresh encryption key.
    public mutating func proposeUpdate(authenticatedData: [UInt8] = []) throws(MLSError) -> [UInt8] {
        try requireActive()
        guard var leaf = tree.leaf(ownLeaf) else {
            throw .inactiveGroup("own leaf is blank")
        }
        let keys: HPKEKeyPair
        do {
            keys = try provider.generateHPKEKeyPair()
            leaf.encryptionKey = keys.publicKey
            leaf.source = .update
            try leaf.sign(with: signingKey, provider: provider, groupID: context.groupID, leafIndex: ownLeaf)
        } catch {
            throw .crypto(error)
        }
        let message = try sendProposal(.update(leaf), authenticatedData: authenticatedData)
        pendingUpdateKeys[keys.publicKey] = keys.privateKey
        return message
    }

    private mutating func sendProposal(_ proposal: Proposal, authenticatedData: [UInt8]) throws(MLSError) -> [UInt8] {
        let content = FramedContent(
            groupID: context.groupID,
            epoch: context.epoch,
            sender: .member(ownLeaf),
            authenticatedData: authenticatedData,
            body: .proposal(proposal)
        )
        let (message, authenticated) = try protect(
            content,
            confirmationTag: nil,
            wireFormat: configuration.handshakeWireFormat
        )
        let reference = proposalReference(authenticated)
        proposals[reference] = CachedProposal(proposal: proposal, sender: .member(ownLeaf), order: proposals.count)
        return message.mlsEncoded
    }
}
