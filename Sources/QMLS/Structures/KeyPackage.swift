// MARK: - Key package

/// A client's pre-published offer to join groups (RFC 9420 §10).
public struct KeyPackage: Hashable, Sendable, MLSCodable {
    public var version: ProtocolVersion
    public var cipherSuite: CipherSuite
    public var initKey: [UInt8]
    public var leafNode: LeafNode
    public var extensions: [Extension]
    public var signature: [UInt8]

    public init(
        version: ProtocolVersion = .mls10,
        cipherSuite: CipherSuite,
        initKey: [UInt8],
        leafNode: LeafNode,
        extensions: [Extension],
        signature: [UInt8]
    ) {
        self.version = version
        self.cipherSuite = cipherSuite
        self.initKey = initKey
        self.leafNode = leafNode
        self.extensions = extensions
        self.signature = signature
    }

    private func encodeContent(to writer: inout MLSWriter) {
        writer.write(version)
        writer.write(cipherSuite)
        writer.writeOpaque(initKey)
        writer.write(leafNode)
        writer.writeVector(extensions)
    }

    public func encode(to writer: inout MLSWriter) {
        encodeContent(to: &writer)
        writer.writeOpaque(signature)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        version = try reader.read()
        cipherSuite = try reader.read()
        initKey = try reader.readOpaque()
        leafNode = try reader.read()
        extensions = try reader.readVector()
        signature = try reader.readOpaque()
    }

    /// The `KeyPackageTBS` encoding.
    public var toBeSigned: [UInt8] {
        var writer = MLSWriter(capacity: 512)
        encodeContent(to: &writer)
        return writer.bytes
    }

    /// `MakeKeyPackageRef(KeyPackage)`.
    public func reference(provider: CipherSuiteProvider) -> [UInt8] {
        provider.refHash(label: "MLS 1.0 KeyPackage Reference", value: mlsEncoded)
    }

    /// Checks the key package signature with the leaf node's signature key.
    public func verifySignature(provider: CipherSuiteProvider) -> Bool {
        provider.verifyWithLabel(
            publicKey: leafNode.signatureKey,
            label: "KeyPackageTBS",
            content: toBeSigned,
            signature: signature
        )
    }
}
