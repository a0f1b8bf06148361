// MARK: - Credential

/// A member's credential (RFC 9420 §5.3): a basic identity, an X.509 chain kept as opaque DER
/// certificates, or an unknown type carried as opaque bytes.
public enum Credential: Hashable, Sendable, MLSCodable {
    case basic(identity: [UInt8])
    case x509(certificates: [[UInt8]])
    case other(type: CredentialType, data: [UInt8])

    public var type: CredentialType {
        switch self {
        case .basic:
            return .basic
        case .x509:
            return .x509
        case .other(let type, _):
            return type
        }
    }

    public func encode(to writer: inout MLSWriter) {
        writer.write(type)
        switch self {
        case .basic(let identity):
            writer.writeOpaque(identity)
        case .x509(let certificates):
            writer.writeVector { w in
                for certificate in certificates {
                    w.writeOpaque(certificate)
                }
            }
        case .other(_, let data):
            writer.writeOpaque(data)
        }
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        let type: CredentialType = try reader.read()
        switch type {
        case .basic:
            self = .basic(identity: try reader.readOpaque())
        case .x509:
            let certificates = try reader.readVector { (r: inout MLSReader) throws(MLSCodecError) -> [UInt8] in
                try r.readOpaque()
            }
            self = .x509(certificates: certificates)
        default:
            self = .other(type: type, data: try reader.readOpaque())
        }
    }
}
