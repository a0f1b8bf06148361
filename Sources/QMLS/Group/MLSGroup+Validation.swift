// MARK: - Validation rules (RFC 9420 §7.3, §10.1, §12.1, §12.2)

extension MLSGroup {
    /// Where a leaf node appears, which fixes its expected source and signature context.
    enum LeafRole {
        case keyPackage
        case update(LeafIndex)
        case commit(LeafIndex)
    }

    /// Key and credential summaries of a tree's members, so that validating many Adds against
    /// the same tree costs O(1) per Add instead of a scan of all members.
    struct MemberDigest {
        var signatureKeys: Set<[UInt8]> = []
        var encryptionKeys: Set<[UInt8]> = []
        var credentialTypes: Set<CredentialType> = []
        /// Credential types every member supports (nil while there are no members).
        var supportedByAll: Set<CredentialType>?

        init(_ tree: RatchetTree) {
            for (_, leaf) in tree.members {
                insert(leaf)
            }
        }

        mutating func insert(_ leaf: LeafNode) {
            signatureKeys.insert(leaf.signatureKey)
            encryptionKeys.insert(leaf.encryptionKey)
            credentialTypes.insert(leaf.credential.type)
            let supported = Set(leaf.capabilities.credentials)
            supportedByAll = supportedByAll.map { $0.intersection(supported) } ?? supported
        }
    }

    /// Validates a leaf node against the group (RFC 9420 §7.3).
    func validateLeafNode(
        _ leaf: LeafNode,
        role: LeafRole,
        tree: RatchetTree,
        extensions: [Extension],
        digest: MemberDigest? = nil
    ) throws(MLSError) {
        guard configuration.credentialValidator(leaf.credential, leaf.signatureKey) else {
            throw .credentialRejected("the credential of a leaf node was not accepted")
        }
        guard provider.isValidSignaturePublicKey(leaf.signatureKey) else {
            throw .invalidLeafNode("signature key does not parse for \(provider.suite)")
        }
        guard provider.isValidHPKEPublicKey(leaf.encryptionKey) else {
            throw .invalidLeafNode("encryption key does not parse for \(provider.suite)")
        }
        let replaced: LeafIndex?
        switch (role, leaf.source) {
        case (.keyPackage, .keyPackage(let lifetime)):
            replaced = nil
            if configuration.validateLifetimes {
                let now = configuration.clock()
                guard lifetime.contains(now) else {
                    throw .invalidLeafNode("the key package lifetime does not contain the current time")
                }
                guard lifetime.notAfter >= lifetime.notBefore,
                    lifetime.notAfter - lifetime.notBefore <= configuration.maximumLifetime
                else {
                    throw .invalidLeafNode("the key package lifetime is longer than allowed")
                }
            }
            guard leaf.verifySignature(provider: provider, groupID: context.groupID, leafIndex: LeafIndex(0)) else {
                throw .invalidSignature("leaf node")
            }
        case (.update(let index), .update), (.commit(let index), .commit):
            replaced = index
            guard leaf.verifySignature(provider: provider, groupID: context.groupID, leafIndex: index) else {
                throw .invalidSignature("leaf node of \(index)")
            }
            if let old = tree.leaf(index), old.encryptionKey == leaf.encryptionKey {
                throw .invalidLeafNode("the new leaf node reuses the old encryption key")
            }
        default:
            throw .invalidLeafNode("leaf node source does not fit where the leaf node appears")
        }
        if let digest, replaced == nil {
            try validateCapabilities(leaf, tree: tree, extensions: extensions, replacing: nil, digest: digest)
            guard !digest.signatureKeys.contains(leaf.signatureKey) else {
                throw .invalidLeafNode("signature key already used by a member")
            }
            guard !digest.encryptionKeys.contains(leaf.encryptionKey) else {
                throw .invalidLeafNode("encryption key already used by a member")
            }
            return
        }
        try validateCapabilities(leaf, tree: tree, extensions: extensions, replacing: replaced)
        for (index, member) in tree.members where index != replaced {
            guard member.signatureKey != leaf.signatureKey else {
                throw .invalidLeafNode("signature key already used by \(index)")
            }
            guard member.encryptionKey != leaf.encryptionKey else {
                throw .invalidLeafNode("encryption key already used by \(index)")
            }
        }
    }

    /// Capability and extension checks shared by leaf validation and GroupContextExtensions.
    func validateCapabilities(
        _ leaf: LeafNode,
        tree: RatchetTree,
        extensions: [Extension],
        replacing: LeafIndex?,
        digest: MemberDigest? = nil
    ) throws(MLSError) {
        let capabilities = leaf.capabilities
        guard capabilities.cipherSuites.contains(provider.suite), capabilities.versions.contains(.mls10) else {
            throw .invalidLeafNode("capabilities do not list the group's version and cipher suite")
        }
        guard !leaf.extensions.hasDuplicateTypes else {
            throw .invalidLeafNode("duplicate leaf node extension")
        }
        for leafExtension in leaf.extensions where !capabilities.supports(leafExtension.type) {
            throw .invalidLeafNode("leaf node extension \(leafExtension.type.rawValue) not in its capabilities")
        }
        guard capabilities.credentials.contains(leaf.credential.type) else {
            throw .invalidLeafNode("capabilities do not list the leaf's own credential type")
        }
        for groupExtension in extensions where !capabilities.supports(groupExtension.type) {
            throw .invalidLeafNode("group extension \(groupExtension.type.rawValue) not supported by the leaf")
        }
        if let data = extensions.data(of: .requiredCapabilities) {
            let required: RequiredCapabilities
            do {
                required = try RequiredCapabilities(mlsDecoding: data)
            } catch {
                throw .codec(error)
            }
            guard required.isSatisfied(by: capabilities) else {
                throw .invalidLeafNode("leaf node does not meet the group's required capabilities")
            }
        }
        if let digest {
            guard digest.supportedByAll?.contains(leaf.credential.type) ?? true else {
                throw .invalidLeafNode("some member does not support the leaf's credential type")
            }
            guard digest.credentialTypes.isSubset(of: Set(capabilities.credentials)) else {
                throw .invalidLeafNode("the leaf does not support every credential type in use")
            }
            return
        }
        for (index, member) in tree.members where index != replacing {
            guard member.capabilities.credentials.contains(leaf.credential.type) else {
                throw .invalidLeafNode("\(index) does not support the leaf's credential type")
            }
            guard capabilities.credentials.contains(member.credential.type) else {
                throw .invalidLeafNode("the leaf does not support the credential type of \(index)")
            }
        }
    }

    /// Validates a leaf already in a ratchet tree received when joining (RFC 9420 §12.4.3.1).
    /// Lifetimes are not checked here: a member's leaf keeps its key package lifetime until it
    /// next updates, and the RFC only recommends the check for received leaves.
    func validateTreeLeaf(
        _ leaf: LeafNode,
        at index: LeafIndex,
        tree: RatchetTree,
        extensions: [Extension]
    ) throws(MLSError) {
        guard configuration.credentialValidator(leaf.credential, leaf.signatureKey) else {
            throw .credentialRejected("the credential of \(index) was not accepted")
        }
        guard provider.isValidSignaturePublicKey(leaf.signatureKey), provider.isValidHPKEPublicKey(leaf.encryptionKey)
        else {
            throw .invalidLeafNode("keys of \(index) do not parse for \(provider.suite)")
        }
        guard leaf.verifySignature(provider: provider, groupID: context.groupID, leafIndex: index) else {
            throw .invalidSignature("leaf node of \(index)")
        }
        try validateCapabilities(leaf, tree: tree, extensions: extensions, replacing: index)
    }

    /// Validates a key package for an Add (RFC 9420 §10.1).
    func validateKeyPackage(
        _ keyPackage: KeyPackage,
        tree: RatchetTree,
        extensions: [Extension],
        digest: MemberDigest? = nil
    ) throws(MLSError) {
        guard keyPackage.version == context.version, keyPackage.cipherSuite == provider.suite else {
            throw .invalidKeyPackage("version or cipher suite differs from the group's")
        }
        guard keyPackage.verifySignature(provider: provider) else {
            throw .invalidSignature("key package")
        }
        guard keyPackage.initKey != keyPackage.leafNode.encryptionKey else {
            throw .invalidKeyPackage("init key equals the leaf's encryption key")
        }
        guard provider.isValidHPKEPublicKey(keyPackage.initKey) else {
            throw .invalidKeyPackage("init key does not parse")
        }
        guard !keyPackage.extensions.hasDuplicateTypes else {
            throw .invalidKeyPackage("duplicate key package extension")
        }
        try validateLeafNode(keyPackage.leafNode, role: .keyPackage, tree: tree, extensions: extensions, digest: digest)
    }

    /// Validates new GroupContext extensions against every member (RFC 9420 §12.1.7).
    func validateGroupContextExtensions(_ extensions: [Extension], tree: RatchetTree) throws(MLSError) {
        guard !extensions.hasDuplicateTypes else {
            throw .invalidProposal("duplicate group context extension")
        }
        var required: RequiredCapabilities?
        if let data = extensions.data(of: .requiredCapabilities) {
            do {
                required = try RequiredCapabilities(mlsDecoding: data)
            } catch {
                throw .codec(error)
            }
        }
        if let data = extensions.data(of: .externalSenders) {
            let senders: [ExternalSender]
            do {
                senders = try ExternalSenderList(mlsDecoding: data).senders
            } catch {
                throw .codec(error)
            }
            for sender in senders {
                guard provider.isValidSignaturePublicKey(sender.signatureKey) else {
                    throw .invalidProposal("external sender key does not parse")
                }
                guard configuration.credentialValidator(sender.credential, sender.signatureKey) else {
                    throw .credentialRejected("external sender credential")
                }
            }
        }
        for (index, member) in tree.members {
            for groupExtension in extensions where !member.capabilities.supports(groupExtension.type) {
                throw .invalidProposal("\(index) does not support group extension \(groupExtension.type.rawValue)")
            }
            if let required, !required.isSatisfied(by: member.capabilities) {
                throw .invalidProposal("\(index) does not meet the required capabilities")
            }
        }
    }

    /// The `external_senders` extension of the current group context.
    func externalSenders() throws(MLSError) -> [ExternalSender] {
        guard let data = context.extensions.data(of: .externalSenders) else {
            return []
        }
        do {
            return try ExternalSenderList(mlsDecoding: data).senders
        } catch {
            throw .codec(error)
        }
    }
}

/// `ExternalSender external_senders<V>`, the payload of the `external_senders` extension.
public struct ExternalSenderList: Hashable, Sendable, MLSCodable {
    public var senders: [ExternalSender]

    public init(senders: [ExternalSender]) {
        self.senders = senders
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeVector(senders)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        senders = try reader.readVector()
    }
}
