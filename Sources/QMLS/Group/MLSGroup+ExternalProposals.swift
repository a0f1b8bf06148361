// MARK: - Proposals from outside the group (RFC 9420 §12.1.8)

extension MLSGroup {
    /// A proposal signed by an entry of the group's `external_senders` extension, as a
    /// PublicMessage (for example a delivery service removing an inactive member).
    public static func externalProposal(
        _ proposal: Proposal,
        groupID: [UInt8],
        epoch: UInt64,
        senderIndex: UInt32,
        signingKey: SignaturePrivateKey,
        suite: CipherSuite,
        authenticatedData: [UInt8] = []
    ) throws(MLSError) -> [UInt8] {
        switch proposal.type {
        case .add, .remove, .psk, .reinit, .groupContextExtensions:
            break
        default:
            throw .invalidProposal("external senders may not send proposal type \(proposal.type.rawValue)")
        }
        return try outsideProposal(
            proposal,
            sender: .external(senderIndex),
            groupID: groupID,
            epoch: epoch,
            signingKey: signingKey,
            suite: suite,
            authenticatedData: authenticatedData
        )
    }

    /// An Add proposal by the client it adds (`new_member_proposal`), signed with the key of the
    /// key package's leaf node.
    public static func newMemberProposal(
        keyPackage bundle: KeyPackageBundle,
        groupID: [UInt8],
        epoch: UInt64,
        authenticatedData: [UInt8] = []
    ) throws(MLSError) -> [UInt8] {
        try outsideProposal(
            .add(bundle.keyPackage),
            sender: .newMemberProposal,
            groupID: groupID,
            epoch: epoch,
            signingKey: bundle.signingKey,
            suite: bundle.keyPackage.cipherSuite,
            authenticatedData: authenticatedData
        )
    }

    private static func outsideProposal(
        _ proposal: Proposal,
        sender: Sender,
        groupID: [UInt8],
        epoch: UInt64,
        signingKey: SignaturePrivateKey,
        suite: CipherSuite,
        authenticatedData: [UInt8]
    ) throws(MLSError) -> [UInt8] {
        let provider: CipherSuiteProvider
        do {
            provider = try CipherSuiteProvider(suite)
        } catch {
            throw .crypto(error)
        }
        let content = FramedContent(
            groupID: groupID,
            epoch: epoch,
            sender: sender,
            authenticatedData: authenticatedData,
            body: .proposal(proposal)
        )
        let signature = try MessageProtection.sign(
            provider,
            key: signingKey,
            wireFormat: .publicMessage,
            content: content,
            context: nil
        )
        let auth = FramedContentAuthData(signature: signature, confirmationTag: nil)
        return MLSMessage(body: .publicMessage(PublicMessage(content: content, auth: auth, membershipTag: nil)))
            .mlsEncoded
    }
}
