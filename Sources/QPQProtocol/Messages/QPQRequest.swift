/// A client → server message (docs/messaging.md §2.1).
public enum QPQRequest: Sendable, Equatable {
    case ping
    case registerStart(user: String, request: [UInt8])
    case registerFinish(user: String, record: [UInt8])
    case loginStart(user: String, ke1: [UInt8])
    case loginFinish(ke3: [UInt8], deviceId: UInt64, deviceName: String, identityKey: [UInt8], signature: [UInt8])
    case resume(deviceId: UInt64, token: [UInt8])
    case logout
    case listDevices
    case revokeDevice(deviceId: UInt64)
    case uploadKeyPackages(lastResort: Bool, packages: [[UInt8]])
    case fetchKeyPackages(user: String)
    case keyPackageCount
    case lookupUser(user: String)
    case createGroup(groupId: [UInt8], tokenHash: [UInt8])
    case commit(groupId: [UInt8], epoch: UInt64, token: [UInt8], nextTokenHash: [UInt8], add: [UInt64], remove: [UInt64], commit: [UInt8], welcomes: [QPQWelcome])
    case send(groupId: [UInt8], epoch: UInt64, token: [UInt8], message: [UInt8])
    case fetch(limit: UInt16)
    case ack(messageIds: [UInt64])
    case subscribe
    case listGroups
    case groupMembers(groupId: [UInt8])
    /// Application messages queued from now on are deleted `seconds` after they were accepted (0: off).
    case setDisappearing(groupId: [UInt8], epoch: UInt64, token: [UInt8], seconds: UInt32)
    /// Reserves a blob of `size` (encrypted) bytes for a file sent to the group (docs/messaging.md §6.4).
    case blobCreate(groupId: [UInt8], size: UInt64)
    /// Appends `data` at `offset`, which must be the number of bytes the server has received.
    case blobUpload(blobId: [UInt8], offset: UInt64, data: [UInt8])
    case blobStatus(blobId: [UInt8])
    /// Reads `length` bytes of a complete blob from `offset`.
    case blobDownload(blobId: [UInt8], offset: UInt64, length: UInt32)

    /// The wire type byte.
    public var type: UInt8 {
        switch self {
        case .ping: return 0x01
        case .registerStart: return 0x02
        case .registerFinish: return 0x03
        case .loginStart: return 0x04
        case .loginFinish: return 0x05
        case .resume: return 0x06
        case .logout: return 0x07
        case .listDevices: return 0x08
        case .revokeDevice: return 0x09
        case .uploadKeyPackages: return 0x0A
        case .fetchKeyPackages: return 0x0B
        case .keyPackageCount: return 0x0C
        case .lookupUser: return 0x0D
        case .createGroup: return 0x0E
        case .commit: return 0x0F
        case .send: return 0x10
        case .fetch: return 0x11
        case .ack: return 0x12
        case .subscribe: return 0x13
        case .listGroups: return 0x14
        case .groupMembers: return 0x15
        case .setDisappearing: return 0x16
        case .blobCreate: return 0x17
        case .blobUpload: return 0x18
        case .blobStatus: return 0x19
        case .blobDownload: return 0x1A
        }
    }

    /// The request's name in docs/messaging.md §2.1 (`Send`, `Commit`, …), for logs.
    public var name: String {
        let index = Int(type) - 1
        return Self.names.indices.contains(index) ? Self.names[index] : "0x\(String(type, radix: 16))"
    }

    /// By type byte − 1 (0x01 `Ping` … 0x1A `BlobDownload`).
    private static let names = [
        "Ping",
        "RegisterStart",
        "RegisterFinish",
        "LoginStart",
        "LoginFinish",
        "Resume",
        "Logout",
        "ListDevices",
        "RevokeDevice",
        "UploadKeyPackages",
        "FetchKeyPackages",
        "KeyPackageCount",
        "LookupUser",
        "CreateGroup",
        "Commit",
        "Send",
        "Fetch",
        "Ack",
        "Subscribe",
        "ListGroups",
        "GroupMembers",
        "SetDisappearing",
        "BlobCreate",
        "BlobUpload",
        "BlobStatus",
        "BlobDownload",
    ]
}
