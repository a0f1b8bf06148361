// MARK: - Proposals

/// Parameters of a ReInit proposal (RFC 9420 §12.1.5).
public struct ReInit: Hashable, Sendable, MLSCodable {
    public var groupID: [UInt8]
    public var version: ProtocolVersion
    public var cipherSuite: CipherSuite
    public var extensions: [Extension]

    public init(groupID: [UInt8], version: ProtocolVersion, cipherSuite: CipherSuite, extensions: [Extension]) {
        self.groupID = groupID
        self.version = version
        self.cipherSuite = cipherSuite
        self.extensions = extensions
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeOpaque(groupID)
        writer.write(version)
        writer.write(cipherSuite)
        writer.writeVector(extensions)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        groupID = try reader.readOpaque()
        version = try reader.read()
        cipherSuite = try reader.read()
        extensions = try reader.readVector()
    }
}

/// A proposed change to the group (RFC 9420 §12.1).
public enum Proposal: Hashable, Sendable, MLSCodable {
    case add(KeyPackage)
    case update(LeafNode)
    case remove(LeafIndex)
    case preSharedKey(PreSharedKeyID)
    case reinit(ReInit)
    case externalInit(kemOutput: [UInt8])
    case groupContextExtensions([Extension])

    public var type: ProposalType {
        switch self {
        case .add:
            return .add
        case .update:
            return .update
        case .remove:
            return .remove
        case .preSharedKey:
            return .psk
        case .reinit:
            return .reinit
        case .externalInit:
            return .externalInit
        case .groupContextExtensions:
            return .groupContextExtensions
        }
    }

    /// Whether a commit covering this proposal must carry an UpdatePath (RFC 9420 §12.4).
    public var requiresPath: Bool {
        switch self {
        case .add, .preSharedKey, .reinit:
            return false
        case .update, .remove, .externalInit, .groupContextExtensions:
            return true
        }
    }

    public func encode(to writer: inout MLSWriter) {
        writer.write(type)
        encodeBody(to: &writer)
    }

    /// The proposal body without its type (the `Add`, `Remove`, ... structs).
    public func encodeBody(to writer: inout MLSWriter) {
        switch self {
        case .add(let keyPackage):
            writer.write(keyPackage)
        case .update(let leafNode):
            writer.write(leafNode)
        case .remove(let leaf):
            writer.write(leaf)
        case .preSharedKey(let psk):
            writer.write(psk)
        case .reinit(let reinit):
            writer.write(reinit)
        case .externalInit(let kemOutput):
            writer.writeOpaque(kemOutput)
        case .groupContextExtensions(let extensions):
            writer.writeVector(extensions)
        }
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        let type: ProposalType = try reader.read()
        self = try Proposal(type: type, body: &reader)
    }

    /// Decodes a proposal body of a known type.
    public init(type: ProposalType, body reader: inout MLSReader) throws(MLSCodecError) {
        switch type {
        case .add:
            self = .add(try reader.read())
        case .update:
            self = .update(try reader.read())
        case .remove:
            self = .remove(try reader.read())
        case .psk:
            self = .preSharedKey(try reader.read())
        case .reinit:
            self = .reinit(try reader.read())
        case .externalInit:
            self = .externalInit(kemOutput: try reader.readOpaque())
        case .groupContextExtensions:
            self = .groupContextExtensions(try reader.readVector())
        default:
            throw .invalidEnumValue(field: "ProposalType", value: UInt64(type.rawValue))
        }
    }
}

/// A proposal carried in a commit by value or by reference (its ProposalRef).
public enum ProposalOrRef: Hashable, Sendable, MLSCodable {
    case proposal(Proposal)
    case reference([UInt8])

    public func encode(to writer: inout MLSWriter) {
        switch self {
        case .proposal(let proposal):
            writer.writeUInt8(1)
            writer.write(proposal)
        case .reference(let reference):
            writer.writeUInt8(2)
            writer.writeOpaque(reference)
        }
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        let type = try reader.readUInt8()
        switch type {
        case 1:
            self = .proposal(try reader.read())
        case 2:
            self = .reference(try reader.readOpaque())
        default:
            throw .invalidEnumValue(field: "ProposalOrRefType", value: UInt64(type))
        }
    }
}

/// A Commit: the proposals it covers and an optional UpdatePath (RFC 9420 §12.4).
public struct Commit: Hashable, Sendable, MLSCodable {
    public var proposals: [ProposalOrRef]
    public var path: UpdatePath?

    public init(proposals: [ProposalOrRef], path: UpdatePath?) {
        self.proposals = proposals
        self.path = path
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeVector(proposals)
        writer.writeOptional(path)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        proposals = try reader.readVector()
        path = try reader.readOptional()
    }
}
