// MARK: - Reinitialization and branching (RFC 9420 §11.2, §11.3)

extension MLSGroup {
    /// After a committed ReInit: creates the new group described by the ReInit, adds the given
    /// members, and links it to this group with a `reinit` resumption PSK. Send the output's
    /// Welcome to the members; they join with ``PSKStore/addResumption(from:)``.
    public func reinitialize(
        keyPackages: [KeyPackage],
        credential: Credential? = nil,
        signingKey newKey: SignaturePrivateKey? = nil
    ) throws(MLSError) -> (group: MLSGroup, output: CommitOutput) {
        guard case .waitingForReInit(let reinit) = status else {
            throw .inactiveGroup("no ReInit was committed")
        }
        guard newKey != nil || reinit.cipherSuite == provider.suite else {
            throw .invalidProposal("the ReInit changes the cipher suite: pass a signing key for it")
        }
        return try startLinkedGroup(
            groupID: reinit.groupID,
            suite: reinit.cipherSuite,
            extensions: reinit.extensions,
            keyPackages: keyPackages,
            usage: .reinit,
            credential: credential,
            signingKey: newKey ?? signingKey
        )
    }

    /// Creates a subgroup of this group's members (a branch) linked by a `branch` resumption PSK.
    public func branch(
        groupID newGroupID: [UInt8],
        keyPackages: [KeyPackage]
    ) throws(MLSError) -> (
        group: MLSGroup, output: CommitOutput
    ) {
        try requireActive()
        return try startLinkedGroup(
            groupID: newGroupID,
            suite: provider.suite,
            extensions: context.extensions,
            keyPackages: keyPackages,
            usage: .branch,
            credential: nil,
            signingKey: signingKey
        )
    }

    private func startLinkedGroup(
        groupID newGroupID: [UInt8],
        suite: CipherSuite,
        extensions: [Extension],
        keyPackages: [KeyPackage],
        usage: ResumptionPSKUsage,
        credential: Credential?,
        signingKey key: SignaturePrivateKey
    ) throws(MLSError) -> (group: MLSGroup, output: CommitOutput) {
        guard let ownNode = tree.leaf(ownLeaf) else {
            throw .inactiveGroup("own leaf is blank")
        }
        var group = try MLSGroup.create(
            suite: suite,
            groupID: newGroupID,
            credential: credential ?? ownNode.credential,
            signingKey: key,
            capabilities: ownNode.capabilities,
            groupExtensions: extensions,
            configuration: configuration
        )
        group.addResumptionPSK(groupID: context.groupID, epoch: context.epoch, secret: secrets.resumptionPSK)
        let psk = PreSharedKeyID(
            kind: .resumption(usage: usage, groupID: context.groupID, epoch: context.epoch),
            nonce: group.provider.randomBytes(group.provider.hashLength)
        )
        var options = CommitOptions()
        options.adds = keyPackages
        let byValue: [Proposal] = keyPackages.map { .add($0) } + [.preSharedKey(psk)]
        let output = try group.createCommit(
            list: byValue.map { ($0, Sender.member(group.ownLeaf)) },
            proposals: byValue.map { .proposal($0) },
            options: options,
            pskPurpose: usage == .reinit ? .reinit : .branch
        )
        try group.mergePendingCommit()
        return (group, output)
    }
}

extension PSKStore {
    /// Makes the current resumption PSK of `group` available (to join its reinit or branch).
    public mutating func addResumption(from group: MLSGroup) {
        addResumption(groupID: group.groupID, epoch: group.epoch, secret: group.resumptionPSK)
    }
}
