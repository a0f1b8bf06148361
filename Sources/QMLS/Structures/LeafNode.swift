// MARK: - Leaf node

/// A member's appearance in the ratchet tree (RFC 9420 §7.2), signed by the member.
public struct LeafNode: Hashable, Sendable, MLSCodable {
    /// How the leaf node came into the tree, with the field that depends on it.
    public enum Source: Hashable, Sendable {
        case keyPackage(Lifetime)
        case update
        case commit(parentHash: [UInt8])

        var code: UInt8 {
            switch self {
            case .keyPackage:
                return 1
            case .update:
                return 2
            case .commit:
                return 3
            }
        }
    }

    public var encryptionKey: [UInt8]
    public var signatureKey: [UInt8]
    public var credential: Credential
    public var capabilities: Capabilities
    public var source: Source
    public var extensions: [Extension]
    public var signature: [UInt8]

    public init(
        encryptionKey: [UInt8],
        signatureKey: [UInt8],
        credential: Credential,
        capabilities: Capabilities,
        source: Source,
        extensions: [Extension],
        signature: [UInt8]
    ) {
        self.encryptionKey = encryptionKey
        self.signatureKey = signatureKey
        self.credential = credential
        self.capabilities = capabilities
        self.source = source
        self.extensions = extensions
        self.signature = signature
    }

    /// The parent hash for a leaf created by a commit.
    public var parentHash: [UInt8]? {
        if case .commit(let hash) = source {
            return hash
        }
        return nil
    }

    private func encodeContent(to writer: inout MLSWriter) {
        writer.writeOpaque(encryptionKey)
        writer.writeOpaque(signatureKey)
        writer.write(credential)
        writer.write(capabilities)
        writer.writeUInt8(source.code)
        switch source {
        case .keyPackage(let lifetime):
            writer.write(lifetime)
        case .update:
            break
        case .commit(let parentHash):
            writer.writeOpaque(parentHash)
        }
        writer.writeVector(extensions)
    }

    public func encode(to writer: inout MLSWriter) {
        encodeContent(to: &writer)
        writer.writeOpaque(signature)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        encryptionKey = try reader.readOpaque()
        signatureKey = try reader.readOpaque()
        credential = try reader.read()
        capabilities = try reader.read()
        let code = try reader.readUInt8()
        switch code {
        case 1:
            source = .keyPackage(try reader.read())
        case 2:
            source = .update
        case 3:
            source = .commit(parentHash: try reader.readOpaque())
        default:
            throw .invalidEnumValue(field: "LeafNodeSource", value: UInt64(code))
        }
        extensions = try reader.readVector()
        signature = try reader.readOpaque()
    }

    /// The `LeafNodeTBS` signed by the member; `update` and `commit` leaves bind the group and leaf.
    public func toBeSigned(groupID: [UInt8], leafIndex: LeafIndex) -> [UInt8] {
        var writer = MLSWriter(capacity: 512)
        encodeContent(to: &writer)
        switch source {
        case .keyPackage:
            break
        case .update, .commit:
            writer.writeOpaque(groupID)
            writer.write(leafIndex)
        }
        return writer.bytes
    }

    /// Signs the leaf node in place.
    public mutating func sign(
        with key: SignaturePrivateKey,
        provider: CipherSuiteProvider,
        groupID: [UInt8],
        leafIndex: LeafIndex
    ) throws(MLSCryptoError) {
        signature = try provider.signWithLabel(
            key,
            label: "LeafNodeTBS",
            content: toBeSigned(groupID: groupID, leafIndex: leafIndex)
        )
    }

    /// Checks the leaf node's signature with its own signature key.
    public func verifySignature(provider: CipherSuiteProvider, groupID: [UInt8], leafIndex: LeafIndex) -> Bool {
        provider.verifyWithLabel(
            publicKey: signatureKey,
            label: "LeafNodeTBS",
            content: toBeSigned(groupID: groupID, leafIndex: leafIndex),
            signature: signature
        )
    }
}
