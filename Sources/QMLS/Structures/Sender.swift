// MARK: - Sender

/// Who sent a message (RFC 9420 §6).
public enum Sender: Hashable, Sendable, MLSCodable {
    case member(LeafIndex)
    /// An entry of the group's `external_senders` extension.
    case external(UInt32)
    case newMemberProposal
    case newMemberCommit

    public func encode(to writer: inout MLSWriter) {
        switch self {
        case .member(let leaf):
            writer.writeUInt8(1)
            writer.write(leaf)
        case .external(let index):
            writer.writeUInt8(2)
            writer.writeUInt32(index)
        case .newMemberProposal:
            writer.writeUInt8(3)
        case .newMemberCommit:
            writer.writeUInt8(4)
        }
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        let type = try reader.readUInt8()
        switch type {
        case 1:
            self = .member(try reader.read())
        case 2:
            self = .external(try reader.readUInt32())
        case 3:
            self = .newMemberProposal
        case 4:
            self = .newMemberCommit
        default:
            throw .invalidEnumValue(field: "SenderType", value: UInt64(type))
        }
    }
}
