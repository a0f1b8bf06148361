/// Reads SFTP wire primitives from a byte slice; every read is bounds checked.
public struct SFTPWireReader: Sendable {
    private let bytes: ArraySlice<UInt8>
    private var index: Int

    public init(_ data: ArraySlice<UInt8>) { self.bytes = data; self.index = data.startIndex }

    /// Bytes not yet consumed.
    public var remaining: Int { bytes.endIndex - index }

    private mutating func take(_ n: Int, _ what: String) throws(SFTPError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else {
            throw .malformedPacket("truncated \(what) (need \(n) bytes, have \(remaining))")
        }
        defer { index += n }
        return bytes[index..<index + n]
    }

    public mutating func u8() throws(SFTPError) -> UInt8 {
        try take(1, "byte").first ?? 0
    }

    public mutating func u32() throws(SFTPError) -> UInt32 {
        try take(4, "uint32").reduce(0) { $0 << 8 | UInt32($1) }
    }

    public mutating func u64() throws(SFTPError) -> UInt64 {
        try take(8, "uint64").reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// A length-prefixed byte string.
    public mutating func data() throws(SFTPError) -> [UInt8] {
        let n = try u32()
        return Array(try take(Int(n), "string"))
    }

    /// A length-prefixed string, decoded as UTF-8 (invalid sequences become U+FFFD).
    public mutating func string() throws(SFTPError) -> String {
        String(decoding: try data(), as: UTF8.self)
    }

    /// All remaining bytes.
    public mutating func rest() -> [UInt8] {
        defer { index = bytes.endIndex }
        return Array(bytes[index...])
    }

    /// Validates an element count against the remaining bytes (each element needs at least `minSize`).
    public func checkCount(_ count: UInt32, minSize: Int, _ what: String) throws(SFTPError) -> Int {
        guard Int(count) <= remaining / max(minSize, 1) else {
            throw .malformedPacket("\(what) count \(count) exceeds packet size")
        }
        return Int(count)
    }
}
