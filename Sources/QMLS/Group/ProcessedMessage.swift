// MARK: - Results of processing

/// What a received message did to the group.
public enum ProcessedMessage: Sendable, Equatable {
    /// Application data from a member.
    case application(ApplicationMessage)
    /// A proposal, now cached for a later commit.
    case proposal(ProposalSummary)
    /// A commit that moved the group to a new epoch.
    case commit(CommitSummary)
    /// A commit that removed this member; the group can no longer be used to send.
    case removed(CommitSummary)
}

/// Decrypted application data.
public struct ApplicationMessage: Sendable, Equatable {
    public var sender: LeafIndex
    public var data: [UInt8]
    public var authenticatedData: [UInt8]
    public var epoch: UInt64
}

/// A received proposal.
public struct ProposalSummary: Sendable, Equatable {
    public var reference: [UInt8]
    public var proposal: Proposal
    public var sender: Sender
}

/// The membership changes of a commit.
public struct CommitSummary: Sendable, Equatable {
    public var committer: Sender
    public var newEpoch: UInt64
    public var added: [LeafIndex]
    public var removed: [LeafIndex]
    public var updated: [LeafIndex]
    public var reinit: ReInit?
}

/// The messages a commit produces: the commit itself, a Welcome when members were added, and
/// the new epoch's GroupInfo. Send them only after deciding to merge the pending commit.
public struct CommitOutput: Sendable {
    public var commit: [UInt8]
    public var welcome: [UInt8]?
    public var groupInfo: [UInt8]
    public var summary: CommitSummary
}
