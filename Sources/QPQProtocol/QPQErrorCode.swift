/// The code of an `Error` response (docs/messaging.md §3). An open set: unknown codes from a newer
/// server decode and print as their number.
public struct QPQErrorCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let malformed = QPQErrorCode(rawValue: 1)
    public static let unsupportedVersion = QPQErrorCode(rawValue: 2)
    public static let unknownType = QPQErrorCode(rawValue: 3)
    public static let tooLarge = QPQErrorCode(rawValue: 4)
    public static let notAuthenticated = QPQErrorCode(rawValue: 5)
    public static let authenticationFailed = QPQErrorCode(rawValue: 6)
    public static let userExists = QPQErrorCode(rawValue: 7)
    public static let unknownUser = QPQErrorCode(rawValue: 8)
    public static let unknownDevice = QPQErrorCode(rawValue: 9)
    public static let deviceRevoked = QPQErrorCode(rawValue: 10)
    public static let unknownGroup = QPQErrorCode(rawValue: 11)
    public static let groupExists = QPQErrorCode(rawValue: 12)
    public static let badToken = QPQErrorCode(rawValue: 13)
    public static let epochMoved = QPQErrorCode(rawValue: 14)
    public static let noKeyPackage = QPQErrorCode(rawValue: 15)
    public static let rateLimited = QPQErrorCode(rawValue: 16)
    public static let limitExceeded = QPQErrorCode(rawValue: 17)
    public static let badSignature = QPQErrorCode(rawValue: 18)
    public static let outOfOrder = QPQErrorCode(rawValue: 19)
    public static let `internal` = QPQErrorCode(rawValue: 20)
    /// No such blob (never created, expired, or not visible to this device).
    public static let unknownBlob = QPQErrorCode(rawValue: 21)
    /// `BlobDownload` of a blob not fully uploaded; `detail` = bytes received.
    public static let blobIncomplete = QPQErrorCode(rawValue: 22)
    /// `BlobUpload` at an offset other than the bytes received; `detail` = bytes received.
    public static let wrongOffset = QPQErrorCode(rawValue: 23)

    static let names: [UInt16: String] = [
        1: "malformed", 2: "unsupportedVersion", 3: "unknownType", 4: "tooLarge", 5: "notAuthenticated",
        6: "authenticationFailed", 7: "userExists", 8: "unknownUser", 9: "unknownDevice", 10: "deviceRevoked",
        11: "unknownGroup", 12: "groupExists", 13: "badToken", 14: "epochMoved", 15: "noKeyPackage",
        16: "rateLimited", 17: "limitExceeded", 18: "badSignature", 19: "outOfOrder", 20: "internal",
        21: "unknownBlob", 22: "blobIncomplete", 23: "wrongOffset",
    ]

    public var description: String { Self.names[rawValue] ?? "error \(rawValue)" }
}
