// MARK: - Extension payloads defined by RFC 9420

/// The `required_capabilities` group context extension (RFC 9420 §11.1).
public struct RequiredCapabilities: Hashable, Sendable, MLSCodable {
    public var extensionTypes: [ExtensionType]
    public var proposalTypes: [ProposalType]
    public var credentialTypes: [CredentialType]

    public init(extensionTypes: [ExtensionType], proposalTypes: [ProposalType], credentialTypes: [CredentialType]) {
        self.extensionTypes = extensionTypes
        self.proposalTypes = proposalTypes
        self.credentialTypes = credentialTypes
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeVector(extensionTypes)
        writer.writeVector(proposalTypes)
        writer.writeVector(credentialTypes)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        extensionTypes = try reader.readVector()
        proposalTypes = try reader.readVector()
        credentialTypes = try reader.readVector()
    }

    /// Whether a leaf's capabilities meet these requirements.
    public func isSatisfied(by capabilities: Capabilities) -> Bool {
        extensionTypes.allSatisfy { capabilities.supports($0) }
            && proposalTypes.allSatisfy { capabilities.supports($0) }
            && credentialTypes.allSatisfy { capabilities.credentials.contains($0) }
    }
}

/// One entry of the `external_senders` group context extension (RFC 9420 §12.1.8.1).
public struct ExternalSender: Hashable, Sendable, MLSCodable {
    public var signatureKey: [UInt8]
    public var credential: Credential

    public init(signatureKey: [UInt8], credential: Credential) {
        self.signatureKey = signatureKey
        self.credential = credential
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeOpaque(signatureKey)
        writer.write(credential)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        signatureKey = try reader.readOpaque()
        credential = try reader.read()
    }
}
