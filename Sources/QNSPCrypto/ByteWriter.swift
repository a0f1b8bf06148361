/// Appends big-endian integers and length-prefixed fields to a byte array.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ v: UInt8) { bytes.append(v) }
    public mutating func write(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(truncatingIfNeeded: v)) }
    public mutating func write(_ v: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }
    public mutating func write(_ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }
    /// Writes a 24-bit big-endian integer (value must fit).
    public mutating func writeUInt24(_ v: Int) {
        precondition(v >= 0 && v < 1 << 24, "internal: 24-bit field overflow")
        bytes.append(UInt8(truncatingIfNeeded: v >> 16)); bytes.append(UInt8(truncatingIfNeeded: v >> 8)); bytes.append(UInt8(truncatingIfNeeded: v))
    }
    public mutating func write<C: Collection<UInt8>>(bytes b: C) { bytes.append(contentsOf: b) }
    /// Writes a 2-byte length then the bytes (count must fit in 16 bits).
    public mutating func writeVector16<C: Collection<UInt8>>(_ b: C) {
        precondition(b.count <= Int(UInt16.max), "internal: vector16 overflow")
        write(UInt16(b.count)); bytes.append(contentsOf: b)
    }
    public mutating func writeVector8<C: Collection<UInt8>>(_ b: C) {
        precondition(b.count <= Int(UInt8.max), "internal: vector8 overflow")
        write(UInt8(b.count)); bytes.append(contentsOf: b)
    }
}

/// Reads big-endian integers and length-prefixed fields, with every length checked.
public struct ByteReader: Sendable {
    /// Raised when a field runs past the end of the input.
    public struct Truncated: Error, Equatable, Sendable {
        public let field: String
    }

    private let bytes: [UInt8]
    public private(set) var offset: Int

    public init<C: Collection<UInt8>>(_ bytes: C) {
        self.bytes = Array(bytes)
        self.offset = 0
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset == bytes.count }

    public mutating func readUInt8(_ field: String) throws(Truncated) -> UInt8 {
        guard remaining >= 1 else { throw Truncated(field: field) }
        defer { offset += 1 }
        return bytes[offset]
    }
    public mutating func readUInt16(_ field: String) throws(Truncated) -> UInt16 {
        guard remaining >= 2 else { throw Truncated(field: field) }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }
    public mutating func readUInt24(_ field: String) throws(Truncated) -> Int {
        guard remaining >= 3 else { throw Truncated(field: field) }
        defer { offset += 3 }
        return Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
    }
    public mutating func readUInt32(_ field: String) throws(Truncated) -> UInt32 {
        guard remaining >= 4 else { throw Truncated(field: field) }
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[offset + i]) }
        offset += 4
        return v
    }
    public mutating func readUInt64(_ field: String) throws(Truncated) -> UInt64 {
        guard remaining >= 8 else { throw Truncated(field: field) }
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[offset + i]) }
        offset += 8
        return v
    }
    public mutating func readBytes(_ count: Int, _ field: String) throws(Truncated) -> [UInt8] {
        guard count >= 0, remaining >= count else { throw Truncated(field: field) }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }
    public mutating func readVector16(_ field: String) throws(Truncated) -> [UInt8] {
        let n = Int(try readUInt16(field))
        return try readBytes(n, field)
    }
    public mutating func readVector8(_ field: String) throws(Truncated) -> [UInt8] {
        let n = Int(try readUInt8(field))
        return try readBytes(n, field)
    }
    public mutating func readRest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }
}
