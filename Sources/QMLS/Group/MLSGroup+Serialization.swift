// MARK: - Group state serialization

/// Versioned binary form of an ``MLSGroup`` for storage. It holds private keys and epoch
/// secrets: store it encrypted and with owner-only permissions.
///
/// Layout (MLS presentation language, version 1):
/// `"QMLS" | uint16 version | CipherSuite | GroupContext | ratchet_tree | status | TreePrivateKeys |
/// opaque signing_key<V> | EpochSecrets | SecretTree | opaque interim<V> | opaque confirmation_tag<V> |
/// proposals<V> | update_keys<V> | resumption_psks<V> | psk_store<V> | past_epochs<V> |
/// optional<pending commit: tag, message, state>`.
extension MLSGroup {
    static let stateMagic = Array("QMLS".utf8)
    static let stateVersion: UInt16 = 1

    /// The serialized group state.
    public func serialized() -> [UInt8] {
        var writer = MLSWriter(capacity: 4096)
        encodeState(to: &writer)
        return writer.bytes
    }

    private func encodeState(to writer: inout MLSWriter) {
        writer.writeRaw(Self.stateMagic)
        writer.writeUInt16(Self.stateVersion)
        writer.write(provider.suite)
        writer.write(context)
        writer.write(tree.wireNodes)
        switch status {
        case .active:
            writer.writeUInt8(0)
        case .removed:
            writer.writeUInt8(1)
        case .waitingForReInit(let reinit):
            writer.writeUInt8(2)
            writer.write(reinit)
        }
        writer.write(privateKeys)
        writer.writeOpaque(signingKey.rawRepresentation)
        writer.write(secrets)
        writer.write(secretTree)
        writer.writeOpaque(interimTranscriptHash)
        writer.writeOpaque(confirmationTag)
        writer.writeVector { w in
            for (reference, cached) in proposals.sorted(by: { $0.value.order < $1.value.order }) {
                w.writeOpaque(reference)
                w.writeUInt32(UInt32(cached.order))
                w.write(cached.sender)
                w.write(cached.proposal)
            }
        }
        writer.writeVector { w in
            for (publicKey, privateKey) in pendingUpdateKeys.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                w.writeOpaque(publicKey)
                w.writeOpaque(privateKey)
            }
        }
        writer.writeVector { w in
            for entry in resumptionPSKs {
                w.writeUInt64(entry.epoch)
                w.writeOpaque(entry.secret)
            }
        }
        writer.writeVector { w in
            for (key, secret) in pskStore.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                w.writeOpaque(key)
                w.writeOpaque(secret)
            }
        }
        writer.writeVector { w in
            for past in pastEpochs {
                w.write(past.context)
                w.writeOpaque(past.senderDataSecret)
                w.write(past.secretTree)
                w.writeVector { keys in
                    for (leaf, key) in past.signatureKeys.sorted(by: { $0.key < $1.key }) {
                        keys.writeUInt32(leaf)
                        keys.writeOpaque(key)
                    }
                }
            }
        }
        if let pending = pendingCommit {
            writer.writeUInt8(1)
            writer.writeOpaque(pending.confirmationTag)
            writer.writeOpaque(pending.message)
            writer.writeOpaque(pending.next.serialized())
        } else {
            writer.writeUInt8(0)
        }
    }

    /// Restores a group from ``serialized()``; the configuration is the application's policy.
    public init(
        serialized bytes: [UInt8],
        configuration: MLSGroupConfiguration = MLSGroupConfiguration()
    ) throws(MLSError) {
        var reader = MLSReader(bytes)
        do {
            self = try Self.decodeState(&reader, configuration: configuration)
            try reader.finish()
        } catch let error as MLSError {
            throw error
        } catch let error as MLSCodecError {
            throw .invalidState("group state does not decode: \(error)")
        } catch {
            throw .invalidState("group state does not decode")
        }
    }

    private static func decodeState(_ reader: inout MLSReader, configuration: MLSGroupConfiguration) throws -> MLSGroup
    {
        guard try reader.readBytes(4) == stateMagic else {
            throw MLSError.invalidState("not a QMLS group state")
        }
        let version = try reader.readUInt16()
        guard version == stateVersion else {
            throw MLSError.invalidState("unsupported group state version \(version)")
        }
        let suite: CipherSuite = try reader.read()
        let provider = try CipherSuiteProvider(suite)
        let context: GroupContext = try reader.read()
        guard context.cipherSuite == suite else {
            throw MLSError.invalidState("cipher suite mismatch")
        }
        var tree = try RatchetTree(try reader.read(RatchetTreeNodes.self))
        guard tree.rootHash(provider) == context.treeHash else {
            throw MLSError.invalidState("stored tree does not match the stored tree hash")
        }
        let status: Status
        switch try reader.readUInt8() {
        case 0:
            status = .active
        case 1:
            status = .removed
        case 2:
            status = .waitingForReInit(try reader.read())
        default:
            throw MLSError.invalidState("unknown status")
        }
        let privateKeys: TreePrivateKeys = try reader.read()
        let signingKey = try provider.signaturePrivateKey(try reader.readOpaque())
        let secrets: EpochSecrets = try reader.read()
        let secretTree: SecretTree = try reader.read()
        let interim = try reader.readOpaque()
        let confirmationTag = try reader.readOpaque()
        let proposalEntries = try reader.readVector {
            (r: inout MLSReader) throws(MLSCodecError) -> ([UInt8], CachedProposal) in
            let reference = try r.readOpaque()
            let order = Int(try r.readUInt32())
            let sender: Sender = try r.read()
            let proposal: Proposal = try r.read()
            return (reference, CachedProposal(proposal: proposal, sender: sender, order: order))
        }
        let updateKeys = try reader.readVector { (r: inout MLSReader) throws(MLSCodecError) -> ([UInt8], [UInt8]) in
            (try r.readOpaque(), try r.readOpaque())
        }
        let resumption = try reader.readVector { (r: inout MLSReader) throws(MLSCodecError) -> (UInt64, [UInt8]) in
            (try r.readUInt64(), try r.readOpaque())
        }
        let store = try reader.readVector { (r: inout MLSReader) throws(MLSCodecError) -> ([UInt8], [UInt8]) in
            (try r.readOpaque(), try r.readOpaque())
        }
        let past = try reader.readVector { (r: inout MLSReader) throws(MLSCodecError) -> PastEpoch in
            let pastContext: GroupContext = try r.read()
            let senderData = try r.readOpaque()
            let pastTree: SecretTree = try r.read()
            let keys = try r.readVector { (k: inout MLSReader) throws(MLSCodecError) -> (UInt32, [UInt8]) in
                (try k.readUInt32(), try k.readOpaque())
            }
            return PastEpoch(
                context: pastContext,
                senderDataSecret: senderData,
                secretTree: pastTree,
                members: .keys(Dictionary(keys, uniquingKeysWith: { first, _ in first }))
            )
        }
        var pending: PendingCommit?
        switch try reader.readUInt8() {
        case 0:
            pending = nil
        case 1:
            let tag = try reader.readOpaque()
            let sent = try reader.readOpaque()
            let next = try MLSGroup(serialized: try reader.readOpaque(), configuration: configuration)
            pending = PendingCommit(next: next, confirmationTag: tag, message: sent, summary: nil)
        default:
            throw MLSError.invalidState("bad pending commit flag")
        }
        guard secretTree.leafCount == tree.leafCount, privateKeys.ownLeaf.value < tree.leafCount else {
            throw MLSError.invalidState("inconsistent tree sizes")
        }
        for entry in past {
            let count = entry.secretTree.leafCount
            guard count > 0, count <= 1 << 30, count & (count - 1) == 0 else {
                throw MLSError.invalidState("inconsistent past epoch tree size")
            }
        }
        var group = MLSGroup(
            provider: provider,
            configuration: configuration,
            context: context,
            tree: tree,
            privateKeys: privateKeys,
            signingKey: signingKey,
            secrets: secrets,
            confirmationTag: confirmationTag
        )
        group.secrets = secrets
        group.secretTree = secretTree
        group.interimTranscriptHash = interim
        group.status = status
        group.proposals = Dictionary(proposalEntries, uniquingKeysWith: { first, _ in first })
        group.pendingUpdateKeys = Dictionary(updateKeys, uniquingKeysWith: { first, _ in first })
        group.resumptionPSKs = resumption.map { (epoch: $0.0, secret: $0.1) }
        group.pskStore = Dictionary(store, uniquingKeysWith: { first, _ in first })
        group.pendingCommit = pending
        group.pastEpochs = past
        return group
    }
}
