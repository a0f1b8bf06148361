// MARK: - Group state machine

/// One member's state of an MLS group (RFC 9420): ratchet tree, key schedule, secret tree and
/// transcript. A sans-I/O state machine: feed it received message bytes with
/// ``process(_:)``, and send the bytes its operations return.
///
/// Driving rules:
/// - Every mutating call either succeeds completely or throws and leaves the state unchanged.
/// - ``commit(_:)`` does not advance the epoch; it stores a pending commit. Send its output,
///   then call ``mergePendingCommit()`` once the delivery service accepted the commit, or
///   ``clearPendingCommit()`` if another commit won. A received commit clears it.
/// - After ``ProcessedMessage/removed(_:)`` or a ReInit commit the group only decrypts.
public struct MLSGroup: Sendable {
    /// Whether the group can still send.
    public enum Status: Sendable, Equatable {
        case active
        case removed
        case waitingForReInit(ReInit)
    }

    public let provider: CipherSuiteProvider
    public var configuration: MLSGroupConfiguration
    public internal(set) var context: GroupContext
    public internal(set) var tree: RatchetTree
    public internal(set) var status: Status
    var privateKeys: TreePrivateKeys
    var signingKey: SignaturePrivateKey
    var secrets: EpochSecrets
    var secretTree: SecretTree
    var interimTranscriptHash: [UInt8]
    var confirmationTag: [UInt8]
    /// Proposals received or sent in this epoch, by ProposalRef.
    var proposals: [[UInt8]: CachedProposal]
    /// Private keys of leaf nodes this member proposed in Update proposals this epoch.
    var pendingUpdateKeys: [[UInt8]: [UInt8]]
    var pendingCommit: PendingCommit?
    /// Resumption PSKs of this group's epochs, newest last.
    var resumptionPSKs: [(epoch: UInt64, secret: [UInt8])]
    /// External PSKs and other groups' resumption PSKs the application made available.
    var pskStore: [[UInt8]: [UInt8]]
    /// Message keys of recent past epochs, for late application messages.
    var pastEpochs: [PastEpoch] = []

    /// What is kept of a past epoch: enough to decrypt and verify its application messages.
    struct PastEpoch: Sendable {
        var context: GroupContext
        var senderDataSecret: [UInt8]
        var secretTree: SecretTree
        /// The epoch's tree (shares storage with the tree it was taken from) or, after a
        /// restore, just the members' signature keys.
        var members: Members

        enum Members: Sendable {
            case tree(RatchetTree)
            case keys([UInt32: [UInt8]])
        }

        func signatureKey(_ leaf: LeafIndex) -> [UInt8]? {
            switch members {
            case .tree(let tree):
                return tree.leaf(leaf)?.signatureKey
            case .keys(let keys):
                return keys[leaf.value]
            }
        }

        var signatureKeys: [UInt32: [UInt8]] {
            switch members {
            case .tree(let tree):
                var keys: [UInt32: [UInt8]] = [:]
                for (index, leaf) in tree.members {
                    keys[index.value] = leaf.signatureKey
                }
                return keys
            case .keys(let keys):
                return keys
            }
        }
    }

    /// A proposal cached for a later commit.
    struct CachedProposal: Sendable {
        var proposal: Proposal
        var sender: Sender
        var order: Int
    }

    /// A commit this member created but has not merged. A class only to break the recursion
    /// of a group state holding its successor; it is immutable.
    final class PendingCommit: Sendable {
        let next: MLSGroup
        let confirmationTag: [UInt8]
        /// The commit message as sent, to recognize it when the delivery service echoes it.
        let message: [UInt8]
        let summary: CommitSummary?

        init(next: MLSGroup, confirmationTag: [UInt8], message: [UInt8], summary: CommitSummary?) {
            self.next = next
            self.confirmationTag = confirmationTag
            self.message = message
            self.summary = summary
        }
    }

    // MARK: Accessors

    public var groupID: [UInt8] {
        context.groupID
    }

    public var epoch: UInt64 {
        context.epoch
    }

    public var cipherSuite: CipherSuite {
        provider.suite
    }

    /// This member's leaf index.
    public var ownLeaf: LeafIndex {
        privateKeys.ownLeaf
    }

    /// The epoch authenticator (RFC 9420 §8.7).
    public var epochAuthenticator: [UInt8] {
        secrets.epochAuthenticator
    }

    /// The members of the current epoch.
    public var members: [(index: LeafIndex, leaf: LeafNode)] {
        tree.members
    }

    /// Whether a commit is waiting for ``mergePendingCommit()``.
    public var hasPendingCommit: Bool {
        pendingCommit != nil
    }

    /// `MLS-Exporter(label, context, length)` for the current epoch.
    public func exportSecret(label: String, context exportContext: [UInt8], length: Int) -> [UInt8] {
        KeySchedule.export(
            provider,
            exporterSecret: secrets.exporterSecret,
            label: Array(label.utf8),
            context: exportContext,
            length: length
        )
    }

    /// The resumption PSK of the current epoch.
    public var resumptionPSK: [UInt8] {
        secrets.resumptionPSK
    }

    /// Makes an external PSK available for PreSharedKey proposals and Welcomes.
    public mutating func addExternalPSK(id: [UInt8], secret: [UInt8]) {
        pskStore[PreSharedKeyID.Kind.external(pskID: id).storeKey] = secret
    }

    /// Makes another group's resumption PSK available (for branch and reinit).
    public mutating func addResumptionPSK(groupID otherGroup: [UInt8], epoch otherEpoch: UInt64, secret: [UInt8]) {
        pskStore[PreSharedKeyID.Kind.resumption(usage: .application, groupID: otherGroup, epoch: otherEpoch).storeKey] =
            secret
    }

    // MARK: Pending commit

    /// Moves to the epoch of the pending commit.
    public mutating func mergePendingCommit() throws(MLSError) {
        guard let pending = pendingCommit else {
            throw .invalidCommit("no pending commit to merge")
        }
        var next = pending.next
        next.configuration = configuration
        self = next
    }

    /// Discards the pending commit (another commit was accepted for this epoch).
    public mutating func clearPendingCommit() {
        pendingCommit = nil
    }

    // MARK: Creation

    /// Creates a one-member group at epoch 0 (RFC 9420 §11).
    public static func create(
        suite: CipherSuite,
        groupID: [UInt8]? = nil,
        credential: Credential,
        signingKey: SignaturePrivateKey,
        capabilities: Capabilities? = nil,
        leafExtensions: [Extension] = [],
        groupExtensions: [Extension] = [],
        configuration: MLSGroupConfiguration = MLSGroupConfiguration()
    ) throws(MLSError) -> MLSGroup {
        let provider: CipherSuiteProvider
        let leafKeys: HPKEKeyPair
        do {
            provider = try CipherSuiteProvider(suite)
            leafKeys = try provider.generateHPKEKeyPair()
        } catch {
            throw .crypto(error)
        }
        guard signingKey.publicKey.count > 0, provider.isValidSignaturePublicKey(signingKey.publicKey) else {
            throw .crypto(.invalidPrivateKey)
        }
        let id = groupID ?? provider.randomBytes(provider.hashLength)
        var leaf = LeafNode(
            encryptionKey: leafKeys.publicKey,
            signatureKey: signingKey.publicKey,
            credential: credential,
            capabilities: capabilities ?? KeyPackageBundle.defaultCapabilities(suite),
            source: .keyPackage(KeyPackageBundle.defaultLifetime(now: configuration.clock())),
            extensions: leafExtensions,
            signature: []
        )
        do {
            try leaf.sign(with: signingKey, provider: provider, groupID: id, leafIndex: LeafIndex(0))
        } catch {
            throw .crypto(error)
        }
        guard !groupExtensions.hasDuplicateTypes else {
            throw .invalidProposal("duplicate group context extension")
        }
        var tree = RatchetTree(creator: leaf)
        let context = GroupContext(
            cipherSuite: suite,
            groupID: id,
            epoch: 0,
            treeHash: tree.rootHash(provider),
            confirmedTranscriptHash: [],
            extensions: groupExtensions
        )
        let group = MLSGroup(
            provider: provider,
            configuration: configuration,
            context: context,
            tree: tree,
            privateKeys: TreePrivateKeys(ownLeaf: LeafIndex(0), leafKey: leafKeys.privateKey),
            signingKey: signingKey,
            secrets: KeySchedule.epochSecrets(provider, epochSecret: provider.randomBytes(provider.hashLength))
        )
        try group.validateGroupContextExtensions(groupExtensions, tree: group.tree)
        return group
    }

    /// A state with fresh per-epoch fields.
    init(
        provider: CipherSuiteProvider,
        configuration: MLSGroupConfiguration,
        context: GroupContext,
        tree: RatchetTree,
        privateKeys: TreePrivateKeys,
        signingKey: SignaturePrivateKey,
        secrets: EpochSecrets,
        confirmationTag: [UInt8]? = nil,
        resumptionPSKs: [(epoch: UInt64, secret: [UInt8])] = [],
        pskStore: [[UInt8]: [UInt8]] = [:]
    ) {
        self.provider = provider
        self.configuration = configuration
        self.context = context
        self.tree = tree
        self.status = .active
        self.privateKeys = privateKeys
        self.signingKey = signingKey
        self.secrets = secrets
        self.secretTree = SecretTree(encryptionSecret: secrets.encryptionSecret, leafCount: tree.leafCount)
        self.secrets.encryptionSecret = []
        let tag =
            confirmationTag
            ?? KeySchedule.confirmationTag(
                provider,
                confirmationKey: secrets.confirmationKey,
                confirmedTranscriptHash: context.confirmedTranscriptHash
            )
        self.confirmationTag = tag
        self.interimTranscriptHash = KeySchedule.interimTranscriptHash(
            provider,
            confirmed: context.confirmedTranscriptHash,
            confirmationTag: tag
        )
        self.proposals = [:]
        self.pendingUpdateKeys = [:]
        self.pendingCommit = nil
        var history = resumptionPSKs
        history.append((context.epoch, secrets.resumptionPSK))
        if history.count > max(configuration.resumptionPSKHistory, 1) {
            history.removeFirst(history.count - max(configuration.resumptionPSKHistory, 1))
        }
        self.resumptionPSKs = history
        self.pskStore = pskStore
    }
}

extension PreSharedKeyID.Kind {
    /// Key of this PSK in a group's PSK store (resumption usage is not part of the key).
    var storeKey: [UInt8] {
        var writer = MLSWriter(capacity: 64)
        switch self {
        case .external(let pskID):
            writer.writeUInt8(1)
            writer.writeOpaque(pskID)
        case .resumption(_, let groupID, let epoch):
            writer.writeUInt8(2)
            writer.writeOpaque(groupID)
            writer.writeUInt64(epoch)
        }
        return writer.bytes
    }
}
