/// A server → client answer to one request (docs/messaging.md §2.2).
public enum QPQResponse: Sendable, Equatable {
    case ok
    case pong(serverTime: UInt64)
    case registerChallenge(response: [UInt8])
    case loginChallenge(ke2: [UInt8], challenge: [UInt8])
    case loggedIn(userId: UInt64, deviceId: UInt64, token: [UInt8])
    case resumed(userId: UInt64, deviceId: UInt64)
    case devices([QPQDevice])
    case keyPackagesStored(oneTime: UInt32, hasLastResort: Bool)
    case keyPackages([QPQDeviceKeyPackage])
    case keyPackageCountIs(oneTime: UInt32, hasLastResort: Bool)
    case user(userId: UInt64, user: String, devices: [QPQUserDevice])
    case committed(epoch: UInt64, messageId: UInt64)
    case sent(messageId: UInt64)
    case messages([QPQEnvelope], more: Bool)
    case acked(deleted: UInt16)
    case groups([QPQGroupSummary])
    case members(epoch: UInt64, [QPQMember])
    case blobCreated(blobId: [UInt8], expiresAt: UInt64)
    /// How much of a blob the server holds (`received == size`: complete).
    case blobState(size: UInt64, received: UInt64, expiresAt: UInt64)
    case blobData(data: [UInt8])
    case error(code: QPQErrorCode, detail: UInt64, message: String)

    /// The wire type byte.
    public var type: UInt8 {
        switch self {
        case .ok: return 0x80
        case .pong: return 0x81
        case .registerChallenge: return 0x82
        case .loginChallenge: return 0x83
        case .loggedIn: return 0x84
        case .resumed: return 0x85
        case .devices: return 0x86
        case .keyPackagesStored: return 0x87
        case .keyPackages: return 0x88
        case .keyPackageCountIs: return 0x89
        case .user: return 0x8A
        case .committed: return 0x8B
        case .sent: return 0x8C
        case .messages: return 0x8D
        case .acked: return 0x8E
        case .groups: return 0x8F
        case .members: return 0x90
        case .blobCreated: return 0x91
        case .blobState: return 0x92
        case .blobData: return 0x93
        case .error: return 0xFF
        }
    }
}
