/// Appends SFTP wire primitives (big-endian integers, length-prefixed strings) to a byte array.
public struct SFTPWireWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }

    public mutating func u32(_ v: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 24)); bytes.append(UInt8(truncatingIfNeeded: v >> 16))
        bytes.append(UInt8(truncatingIfNeeded: v >> 8)); bytes.append(UInt8(truncatingIfNeeded: v))
    }

    public mutating func u64(_ v: UInt64) {
        u32(UInt32(truncatingIfNeeded: v >> 32)); u32(UInt32(truncatingIfNeeded: v))
    }

    /// A string as UTF-8 bytes with a uint32 length prefix.
    public mutating func string(_ s: String) { data(Array(s.utf8)) }

    /// Raw bytes with a uint32 length prefix (SFTP "string").
    public mutating func data<C: Collection>(_ d: C) where C.Element == UInt8 {
        u32(UInt32(truncatingIfNeeded: d.count)); bytes.append(contentsOf: d)
    }

    /// Raw bytes without a length prefix.
    public mutating func raw<C: Collection>(_ d: C) where C.Element == UInt8 { bytes.append(contentsOf: d) }

    /// The accumulated bytes prefixed with their uint32 length: a complete packet.
    public func packet() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count + 4)
        let n = UInt32(truncatingIfNeeded: bytes.count)
        out.append(UInt8(truncatingIfNeeded: n >> 24)); out.append(UInt8(truncatingIfNeeded: n >> 16))
        out.append(UInt8(truncatingIfNeeded: n >> 8)); out.append(UInt8(truncatingIfNeeded: n))
        out.append(contentsOf: bytes)
        return out
    }
}
