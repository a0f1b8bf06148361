// MARK: - Writer

/// Appends TLS presentation-language encodings with MLS variable-length vectors
/// (RFC 9420 §2.1) to a byte buffer.
public struct MLSWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    /// Largest length a variable-length vector header can carry (2^30 - 1).
    public static let maxVarint = (1 << 30) - 1

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    // MARK: Fixed-size integers

    public mutating func writeUInt8(_ value: UInt8) {
        bytes.append(value)
    }

    public mutating func writeUInt16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func writeUInt32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }

    public mutating func writeUInt64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }

    // MARK: Variable-length integers

    /// Writes `value` as an MLS varint in its shortest form.
    public mutating func writeVarint(_ value: Int) {
        precondition(value >= 0 && value <= Self.maxVarint, "MLS varint out of range: \(value)")
        bytes.append(contentsOf: Self.varintBytes(value))
    }

    static func varintBytes(_ value: Int) -> [UInt8] {
        if value < 64 {
            return [UInt8(value)]
        }
        if value < 16384 {
            return [0x40 | UInt8(value >> 8), UInt8(value & 0xff)]
        }
        return [
            0x80 | UInt8((value >> 24) & 0x3f),
            UInt8((value >> 16) & 0xff),
            UInt8((value >> 8) & 0xff),
            UInt8(value & 0xff),
        ]
    }

    // MARK: Byte strings and vectors

    /// Appends bytes with no length prefix.
    public mutating func writeRaw<C: Collection>(_ raw: C) where C.Element == UInt8 {
        bytes.append(contentsOf: raw)
    }

    /// Writes `opaque data<V>`: a varint length followed by the bytes.
    public mutating func writeOpaque<C: Collection>(_ data: C) where C.Element == UInt8 {
        writeVarint(data.count)
        bytes.append(contentsOf: data)
    }

    /// Writes a `<V>` vector whose content is produced by `body`.
    public mutating func writeVector(_ body: (inout MLSWriter) -> Void) {
        let start = bytes.count
        body(&self)
        let length = bytes.count - start
        bytes.insert(contentsOf: Self.varintBytes(length), at: start)
    }

    /// Writes a `<V>` vector of encodable elements.
    public mutating func writeVector<T: MLSEncodable>(_ elements: [T]) {
        writeVector { writer in
            for element in elements {
                element.encode(to: &writer)
            }
        }
    }

    /// Writes `optional<T>`: a presence octet and, if present, the value.
    public mutating func writeOptional<T: MLSEncodable>(_ value: T?) {
        if let value {
            writeUInt8(1)
            value.encode(to: &self)
        } else {
            writeUInt8(0)
        }
    }

    /// Writes an encodable value in place.
    public mutating func write<T: MLSEncodable>(_ value: T) {
        value.encode(to: &self)
    }
}
