/// Everything that can go wrong in the stealth layer (docs/protocol.md §9). A server never
/// reports these to a peer that has not sent a valid hello: it treats the peer as a probe.
public enum StealthError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A stealth line that is not `qnsp-stealth1 <44 base64 characters for 32 bytes>`.
    case malformedLine(String)
    /// A frame header announced a body length outside 19…17427 or padding beyond the body.
    case invalidFrameLength(Int)
    /// A frame header or body failed its AEAD tag (wrong line, modified, reordered or replayed bytes).
    case frameAuthenticationFailed
    /// A frame type this version does not define, or a hello where none belongs.
    case unknownFrameType(UInt8)
    /// Server: an authentic hello outside the time window, replayed, or refused by a full filter.
    case helloRefused(String)
    /// Server with mimicry: the flight does not start with a valid printable prefix.
    case badMimicryPrefix
    /// The peer's stream ended inside a frame.
    case truncated
    /// More than 2^62 frames in one direction.
    case sequenceExhausted
    /// The session failed earlier, or is a refused (probe) connection: it sends and delivers nothing.
    case closed

    public var description: String {
        switch self {
        case .malformedLine(let why): return "malformed stealth line: \(why)"
        case .invalidFrameLength(let n): return "stealth frame length \(n) out of range"
        case .frameAuthenticationFailed: return "stealth frame failed authentication (wrong stealth line or modified data)"
        case .unknownFrameType(let t): return "unknown stealth frame type \(t)"
        case .helloRefused(let why): return "stealth hello refused: \(why)"
        case .badMimicryPrefix: return "stealth flight without a valid mimicry prefix"
        case .truncated: return "stream ended inside a stealth frame"
        case .sequenceExhausted: return "stealth frame counter exhausted"
        case .closed: return "stealth session closed"
        }
    }
}
