/// Errors raised by the QSFTP codec, client and server helpers.
public enum SFTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A packet could not be parsed; the string says what was wrong.
    case malformedPacket(String)
    /// A packet announced a length above the limit (the announced length).
    case packetTooLarge(Int)
    /// A packet announced a length of zero.
    case emptyPacket
    /// The peer sent a message that makes no sense at this point.
    case unexpectedMessage(String)
    /// A response carried a request id that has no outstanding request.
    case unknownRequestID(UInt32)
    /// The server answered with a non-OK status.
    case status(SFTPStatus, String)
    /// A local system call failed (errno, context).
    case io(Int32, String)
    /// The peer closed the connection.
    case connectionClosed
    /// The server speaks a protocol version other than 3.
    case unsupportedVersion(UInt32)
    /// The operation needs an extension that the server did not advertise.
    case extensionUnsupported(String)
    /// An argument supplied by the caller is invalid.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .malformedPacket(let why): return "malformed SFTP packet: \(why)"
        case .packetTooLarge(let n): return "SFTP packet too large: \(n) bytes (limit \(SFTPPacketReader.defaultMaxPacketLength))"
        case .emptyPacket: return "SFTP packet with zero length"
        case .unexpectedMessage(let what): return "unexpected SFTP message: \(what)"
        case .unknownRequestID(let id): return "SFTP response for unknown request id \(id)"
        case .status(let code, let msg):
            return msg.isEmpty ? "SFTP server error: \(code.defaultMessage)" : "SFTP server error (\(code.defaultMessage)): \(msg)"
        case .io(let e, let ctx): return "\(ctx): \(POSIX.errorText(e)) (errno \(e))"
        case .connectionClosed: return "SFTP connection closed by peer"
        case .unsupportedVersion(let v): return "unsupported SFTP protocol version \(v) (need 3)"
        case .extensionUnsupported(let name): return "SFTP server does not support extension \(name)"
        case .invalidArgument(let why): return "invalid argument: \(why)"
        }
    }
}
