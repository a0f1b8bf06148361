// MARK: - Registry code points (RFC 9420 §17)

/// An MLS protocol version (`mls10` is the only one defined).
public struct ProtocolVersion: RawRepresentable, Hashable, Sendable, MLSCodable {
    public let rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    public static let mls10 = ProtocolVersion(rawValue: 1)

    public func encode(to writer: inout MLSWriter) {
        writer.writeUInt16(rawValue)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        rawValue = try reader.readUInt16()
    }
}

/// The "MLS Wire Formats" registry.
public struct WireFormat: RawRepresentable, Hashable, Sendable, MLSCodable {
    public let rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    public static let publicMessage = WireFormat(rawValue: 1)
    public static let privateMessage = WireFormat(rawValue: 2)
    public static let welcome = WireFormat(rawValue: 3)
    public static let groupInfo = WireFormat(rawValue: 4)
    public static let keyPackage = WireFormat(rawValue: 5)

    public func encode(to writer: inout MLSWriter) {
        writer.writeUInt16(rawValue)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        rawValue = try reader.readUInt16()
    }
}

/// The "MLS Extension Types" registry.
public struct ExtensionType: RawRepresentable, Hashable, Sendable, MLSCodable {
    public let rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    public static let applicationID = ExtensionType(rawValue: 1)
    public static let ratchetTree = ExtensionType(rawValue: 2)
    public static let requiredCapabilities = ExtensionType(rawValue: 3)
    public static let externalPub = ExtensionType(rawValue: 4)
    public static let externalSenders = ExtensionType(rawValue: 5)

    /// Extension types every implementation supports; they are never listed in capabilities.
    public static let defaults: Set<ExtensionType> = [
        .applicationID, .ratchetTree, .requiredCapabilities, .externalPub, .externalSenders,
    ]

    public func encode(to writer: inout MLSWriter) {
        writer.writeUInt16(rawValue)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        rawValue = try reader.readUInt16()
    }
}

/// The "MLS Proposal Types" registry.
public struct ProposalType: RawRepresentable, Hashable, Sendable, MLSCodable {
    public let rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    public static let add = ProposalType(rawValue: 1)
    public static let update = ProposalType(rawValue: 2)
    public static let remove = ProposalType(rawValue: 3)
    public static let psk = ProposalType(rawValue: 4)
    public static let reinit = ProposalType(rawValue: 5)
    public static let externalInit = ProposalType(rawValue: 6)
    public static let groupContextExtensions = ProposalType(rawValue: 7)

    /// Proposal types every implementation supports; they are never listed in capabilities.
    public static let defaults: Set<ProposalType> = [
        .add, .update, .remove, .psk, .reinit, .externalInit, .groupContextExtensions,
    ]

    public func encode(to writer: inout MLSWriter) {
        writer.writeUInt16(rawValue)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        rawValue = try reader.readUInt16()
    }
}

/// The "MLS Credential Types" registry.
public struct CredentialType: RawRepresentable, Hashable, Sendable, MLSCodable {
    public let rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    public static let basic = CredentialType(rawValue: 1)
    public static let x509 = CredentialType(rawValue: 2)

    public func encode(to writer: inout MLSWriter) {
        writer.writeUInt16(rawValue)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        rawValue = try reader.readUInt16()
    }
}

/// `ContentType` of FramedContent and PrivateMessage.
public enum ContentType: UInt8, Sendable, MLSCodable {
    case application = 1
    case proposal = 2
    case commit = 3

    public func encode(to writer: inout MLSWriter) {
        writer.writeUInt8(rawValue)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        let raw = try reader.readUInt8()
        guard let value = ContentType(rawValue: raw) else {
            throw .invalidEnumValue(field: "ContentType", value: UInt64(raw))
        }
        self = value
    }
}
