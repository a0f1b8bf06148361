// MARK: - Capabilities and lifetime

/// What a client supports (RFC 9420 §7.2); default proposal and extension types are not listed.
public struct Capabilities: Hashable, Sendable, MLSCodable {
    public var versions: [ProtocolVersion]
    public var cipherSuites: [CipherSuite]
    public var extensions: [ExtensionType]
    public var proposals: [ProposalType]
    public var credentials: [CredentialType]

    public init(
        versions: [ProtocolVersion] = [.mls10],
        cipherSuites: [CipherSuite],
        extensions: [ExtensionType] = [],
        proposals: [ProposalType] = [],
        credentials: [CredentialType] = [.basic]
    ) {
        self.versions = versions
        self.cipherSuites = cipherSuites
        self.extensions = extensions
        self.proposals = proposals
        self.credentials = credentials
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeVector(versions)
        writer.writeVector(cipherSuites)
        writer.writeVector(extensions)
        writer.writeVector(proposals)
        writer.writeVector(credentials)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        versions = try reader.readVector()
        cipherSuites = try reader.readVector()
        extensions = try reader.readVector()
        proposals = try reader.readVector()
        credentials = try reader.readVector()
    }

    /// Whether an extension type is supported (defaults always are).
    public func supports(_ type: ExtensionType) -> Bool {
        ExtensionType.defaults.contains(type) || extensions.contains(type)
    }

    /// Whether a proposal type is supported (defaults always are).
    public func supports(_ type: ProposalType) -> Bool {
        ProposalType.defaults.contains(type) || proposals.contains(type)
    }
}

/// The validity interval of a KeyPackage's leaf node, in seconds since the Unix epoch.
public struct Lifetime: Hashable, Sendable, MLSCodable {
    public var notBefore: UInt64
    public var notAfter: UInt64

    public init(notBefore: UInt64, notAfter: UInt64) {
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeUInt64(notBefore)
        writer.writeUInt64(notAfter)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        notBefore = try reader.readUInt64()
        notAfter = try reader.readUInt64()
    }

    public func contains(_ time: UInt64) -> Bool {
        notBefore <= time && time <= notAfter
    }
}
