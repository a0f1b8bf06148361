/// Reads the SSH wire encoding (RFC 4251 §5) the agent protocol uses: big-endian
/// uint32, byte, and uint32-length-prefixed strings, every length checked against what is left.
public struct AgentWireReader: Sendable {
    private let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
    }

    public var isAtEnd: Bool { offset == bytes.count }
    public var remaining: Int { bytes.count - offset }

    public mutating func readByte(_ field: String) throws(AgentError) -> UInt8 {
        guard remaining >= 1 else { throw .malformed("truncated at \(field)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readUInt32(_ field: String) throws(AgentError) -> UInt32 {
        guard remaining >= 4 else { throw .malformed("truncated at \(field)") }
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[offset + i]) }
        offset += 4
        return v
    }

    public mutating func readString(_ field: String) throws(AgentError) -> [UInt8] {
        let n = try readUInt32(field)
        guard Int(n) <= remaining else { throw .malformed("\(field) length \(n) exceeds the \(remaining) bytes left") }
        defer { offset += Int(n) }
        return Array(bytes[offset..<(offset + Int(n))])
    }

    /// A string that must be UTF-8 (comments, key type names).
    public mutating func readText(_ field: String) throws(AgentError) -> String {
        let raw = try readString(field)
        guard let s = String(validating: raw, as: UTF8.self) else { throw .malformed("\(field) is not UTF-8") }
        return s
    }

    public mutating func expectEnd(_ what: String) throws(AgentError) {
        guard isAtEnd else { throw .malformed("\(remaining) trailing bytes after \(what)") }
    }
}
