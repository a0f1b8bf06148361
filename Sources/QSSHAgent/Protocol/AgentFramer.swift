/// Splits a byte stream into agent messages: `uint32 length || length bytes`, the first of
/// which is the message type. Sans-I/O: feed what the socket gave, take whole frames.
public struct AgentFramer: Sendable {
    /// OpenSSH's limit (AGENT_MAX_LEN); a longer announcement ends the connection.
    public static let maximumFrameSize = 256 * 1024

    private var buffer: [UInt8] = []
    private var start = 0

    public init() {}

    public mutating func feed<C: Collection<UInt8>>(_ bytes: C) {
        buffer.append(contentsOf: bytes)
    }

    /// The next whole frame (type byte first), nil when more bytes are needed.
    public mutating func nextFrame() throws(AgentError) -> [UInt8]? {
        let available = buffer.count - start
        guard available >= 4 else { return nil }
        var n = 0
        for i in 0..<4 { n = n << 8 | Int(buffer[start + i]) }
        guard n <= Self.maximumFrameSize else { throw .frameTooLarge(n) }
        guard n >= 1 else { throw .malformed("empty frame (no message type)") }
        guard available >= 4 + n else { return nil }
        let frame = Array(buffer[(start + 4)..<(start + 4 + n)])
        start += 4 + n
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 64 * 1024 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        return frame
    }

    /// Frames a message: `uint32 length || type || body`.
    public static func frame(_ message: [UInt8]) -> [UInt8] {
        var w = AgentWireWriter(capacity: message.count + 4)
        w.write(string: message)
        return w.bytes
    }
}
