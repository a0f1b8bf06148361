// MARK: - Pre-shared key identifier

/// The use a resumption PSK is put to (RFC 9420 §8.4).
public enum ResumptionPSKUsage: UInt8, Hashable, Sendable {
    case application = 1
    case reinit = 2
    case branch = 3
}

/// Names a PSK injected into the key schedule, with a fresh nonce (RFC 9420 §8.4).
public struct PreSharedKeyID: Hashable, Sendable, MLSCodable {
    /// External PSKs are named by the application; resumption PSKs by group and epoch.
    public enum Kind: Hashable, Sendable {
        case external(pskID: [UInt8])
        case resumption(usage: ResumptionPSKUsage, groupID: [UInt8], epoch: UInt64)
    }

    public var kind: Kind
    public var nonce: [UInt8]

    public init(kind: Kind, nonce: [UInt8]) {
        self.kind = kind
        self.nonce = nonce
    }

    public func encode(to writer: inout MLSWriter) {
        switch kind {
        case .external(let pskID):
            writer.writeUInt8(1)
            writer.writeOpaque(pskID)
        case .resumption(let usage, let groupID, let epoch):
            writer.writeUInt8(2)
            writer.writeUInt8(usage.rawValue)
            writer.writeOpaque(groupID)
            writer.writeUInt64(epoch)
        }
        writer.writeOpaque(nonce)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        let type = try reader.readUInt8()
        switch type {
        case 1:
            kind = .external(pskID: try reader.readOpaque())
        case 2:
            let rawUsage = try reader.readUInt8()
            guard let usage = ResumptionPSKUsage(rawValue: rawUsage) else {
                throw .invalidEnumValue(field: "ResumptionPSKUsage", value: UInt64(rawUsage))
            }
            kind = .resumption(usage: usage, groupID: try reader.readOpaque(), epoch: try reader.readUInt64())
        default:
            throw .invalidEnumValue(field: "PSKType", value: UInt64(type))
        }
        nonce = try reader.readOpaque()
    }
}
