/// Why bytes from a peer are not a qpq/1 frame. Each case maps to the `Error` code the server answers
/// with (``errorCode``); `tooLarge` and `emptyFrame` break the stream, the others only the one frame.
public enum QPQDecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The length prefix announces more than the frame may have (``QPQLimits/maxFrame``, or
    /// ``QPQLimits/maxLargeFrame`` where large frames are allowed).
    case tooLarge(length: Int)
    /// A frame of length 0.
    case emptyFrame
    /// The body's version byte is not ``QPQLimits/version``.
    case unsupportedVersion(UInt8)
    /// No message has this type.
    case unknownType(UInt8)
    /// A field is short, too long, out of range, not UTF-8, or bytes are left over.
    case malformed(String)

    public var errorCode: QPQErrorCode {
        switch self {
        case .tooLarge: return .tooLarge
        case .emptyFrame, .malformed: return .malformed
        case .unsupportedVersion: return .unsupportedVersion
        case .unknownType: return .unknownType
        }
    }

    /// Whether the byte stream can no longer be split into frames after this error.
    public var breaksStream: Bool {
        switch self {
        case .tooLarge, .emptyFrame: return true
        case .unsupportedVersion, .unknownType, .malformed: return false
        }
    }

    public var description: String {
        switch self {
        case .tooLarge(let length):
            return "frame of \(length) bytes is over the limit (\(QPQLimits.maxFrame) bytes; \(QPQLimits.maxLargeFrame) for a Commit after login)"
        case .emptyFrame: return "empty frame"
        case .unsupportedVersion(let v): return "unsupported protocol version \(v) (this side speaks \(QPQLimits.version))"
        case .unknownType(let t): return "unknown message type 0x\(String(t, radix: 16))"
        case .malformed(let why): return "malformed message: \(why)"
        }
    }
}
