// MARK: - MLS message

/// The outer envelope of every MLS message on the wire (RFC 9420 §6).
public struct MLSMessage: Hashable, Sendable, MLSCodable {
    /// The message itself, by wire format.
    public enum Body: Hashable, Sendable {
        case publicMessage(PublicMessage)
        case privateMessage(PrivateMessage)
        case welcome(Welcome)
        case groupInfo(GroupInfo)
        case keyPackage(KeyPackage)

        public var wireFormat: WireFormat {
            switch self {
            case .publicMessage:
                return .publicMessage
            case .privateMessage:
                return .privateMessage
            case .welcome:
                return .welcome
            case .groupInfo:
                return .groupInfo
            case .keyPackage:
                return .keyPackage
            }
        }
    }

    public var version: ProtocolVersion
    public var body: Body

    public init(version: ProtocolVersion = .mls10, body: Body) {
        self.version = version
        self.body = body
    }

    public var wireFormat: WireFormat {
        body.wireFormat
    }

    public func encode(to writer: inout MLSWriter) {
        writer.write(version)
        writer.write(body.wireFormat)
        switch body {
        case .publicMessage(let message):
            writer.write(message)
        case .privateMessage(let message):
            writer.write(message)
        case .welcome(let welcome):
            writer.write(welcome)
        case .groupInfo(let groupInfo):
            writer.write(groupInfo)
        case .keyPackage(let keyPackage):
            writer.write(keyPackage)
        }
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        version = try reader.read()
        guard version == .mls10 else {
            throw .invalidEnumValue(field: "ProtocolVersion", value: UInt64(version.rawValue))
        }
        let wireFormat: WireFormat = try reader.read()
        switch wireFormat {
        case .publicMessage:
            body = .publicMessage(try reader.read())
        case .privateMessage:
            body = .privateMessage(try reader.read())
        case .welcome:
            body = .welcome(try reader.read())
        case .groupInfo:
            body = .groupInfo(try reader.read())
        case .keyPackage:
            body = .keyPackage(try reader.read())
        default:
            throw .invalidEnumValue(field: "WireFormat", value: UInt64(wireFormat.rawValue))
        }
    }
}
