/// An SFTP v3 status code as carried in `SSH_FXP_STATUS`.
///
/// Modelled as a struct so that codes outside the v3 range (sent by newer
/// servers) survive decoding unchanged.
public struct SFTPStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let ok = SFTPStatus(rawValue: 0)
    public static let eof = SFTPStatus(rawValue: 1)
    public static let noSuchFile = SFTPStatus(rawValue: 2)
    public static let permissionDenied = SFTPStatus(rawValue: 3)
    public static let failure = SFTPStatus(rawValue: 4)
    public static let badMessage = SFTPStatus(rawValue: 5)
    public static let noConnection = SFTPStatus(rawValue: 6)
    public static let connectionLost = SFTPStatus(rawValue: 7)
    public static let opUnsupported = SFTPStatus(rawValue: 8)

    /// The default human readable text (same wording as OpenSSH).
    public var defaultMessage: String {
        switch rawValue {
        case 0: return "Success"
        case 1: return "End of file"
        case 2: return "No such file"
        case 3: return "Permission denied"
        case 4: return "Failure"
        case 5: return "Bad message"
        case 6: return "No connection"
        case 7: return "Connection lost"
        case 8: return "Operation unsupported"
        default: return "Unknown status \(rawValue)"
        }
    }

    public var description: String { defaultMessage }
}
