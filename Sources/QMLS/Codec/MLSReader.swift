// MARK: - Reader

/// Reads TLS presentation-language encodings with MLS variable-length vectors from a byte buffer.
///
/// Every read is bounds-checked against the bytes that remain in the current vector; an
/// overrun throws ``MLSCodecError/truncated``.
public struct MLSReader: Sendable {
    private let base: [UInt8]
    private var cursor: Int
    private let limit: Int

    public init(_ bytes: [UInt8]) {
        base = bytes
        cursor = 0
        limit = bytes.count
    }

    private init(base: [UInt8], cursor: Int, limit: Int) {
        self.base = base
        self.cursor = cursor
        self.limit = limit
    }

    /// Bytes left to read in the current vector.
    public var remaining: Int {
        limit - cursor
    }

    public var isAtEnd: Bool {
        cursor >= limit
    }

    /// Throws unless every byte has been read.
    public func finish() throws(MLSCodecError) {
        if cursor != limit {
            throw .trailingBytes(limit - cursor)
        }
    }

    // MARK: Fixed-size integers

    public mutating func readUInt8() throws(MLSCodecError) -> UInt8 {
        guard cursor < limit else {
            throw .truncated
        }
        let value = base[cursor]
        cursor += 1
        return value
    }

    public mutating func readUInt16() throws(MLSCodecError) -> UInt16 {
        UInt16(try readBigEndian(2))
    }

    public mutating func readUInt32() throws(MLSCodecError) -> UInt32 {
        UInt32(try readBigEndian(4))
    }

    public mutating func readUInt64() throws(MLSCodecError) -> UInt64 {
        try readBigEndian(8)
    }

    private mutating func readBigEndian(_ count: Int) throws(MLSCodecError) -> UInt64 {
        guard remaining >= count else {
            throw .truncated
        }
        var value: UInt64 = 0
        for i in 0..<count {
            value = (value << 8) | UInt64(base[cursor + i])
        }
        cursor += count
        return value
    }

    // MARK: Variable-length integers

    /// Reads an MLS varint, rejecting the `0b11` prefix and non-minimal encodings.
    public mutating func readVarint() throws(MLSCodecError) -> Int {
        let first = try readUInt8()
        let prefix = first >> 6
        if prefix == 3 {
            throw .invalidVarintPrefix
        }
        let length = 1 << Int(prefix)
        guard remaining >= length - 1 else {
            throw .truncated
        }
        var value = Int(first & 0x3f)
        if length > 1 {
            for _ in 1..<length {
                value = (value << 8) | Int(base[cursor])
                cursor += 1
            }
        }
        if prefix >= 1 && value < (1 << (8 * (length / 2) - 2)) {
            throw .nonMinimalVarint
        }
        return value
    }

    // MARK: Byte strings and vectors

    /// Reads `count` bytes with no length prefix.
    public mutating func readBytes(_ count: Int) throws(MLSCodecError) -> [UInt8] {
        guard count >= 0, remaining >= count else {
            throw .truncated
        }
        let out = Array(base[cursor..<(cursor + count)])
        cursor += count
        return out
    }

    /// Reads `opaque data<V>`.
    public mutating func readOpaque() throws(MLSCodecError) -> [UInt8] {
        let length = try readVarint()
        return try readBytes(length)
    }

    /// Reads a `<V>` vector and hands its content to `body` as a reader limited to that content,
    /// which `body` must consume completely.
    public mutating func readVectorContent<T>(
        _ body: (inout MLSReader) throws(MLSCodecError) -> T
    ) throws(MLSCodecError) -> T {
        let length = try readVarint()
        guard remaining >= length else {
            throw .truncated
        }
        var sub = MLSReader(base: base, cursor: cursor, limit: cursor + length)
        let value = try body(&sub)
        try sub.finish()
        cursor += length
        return value
    }

    /// Reads a `<V>` vector of elements, each decoded by `element`.
    public mutating func readVector<T>(
        _ element: (inout MLSReader) throws(MLSCodecError) -> T
    ) throws(MLSCodecError) -> [T] {
        try readVectorContent { (sub: inout MLSReader) throws(MLSCodecError) -> [T] in
            var out: [T] = []
            while !sub.isAtEnd {
                let before = sub.cursor
                out.append(try element(&sub))
                if sub.cursor == before {
                    throw .invalidValue("vector element of zero length")
                }
            }
            return out
        }
    }

    /// Reads a `<V>` vector of decodable elements.
    public mutating func readVector<T: MLSDecodable>(of type: T.Type = T.self) throws(MLSCodecError) -> [T] {
        try readVector { (sub: inout MLSReader) throws(MLSCodecError) -> T in
            try T(from: &sub)
        }
    }

    /// Reads `optional<T>`.
    public mutating func readOptional<T>(
        _ body: (inout MLSReader) throws(MLSCodecError) -> T
    ) throws(MLSCodecError) -> T? {
        let flag = try readUInt8()
        switch flag {
        case 0:
            return nil
        case 1:
            return try body(&self)
        default:
            throw .invalidOptionalFlag(flag)
        }
    }

    /// Reads `optional<T>` of a decodable type.
    public mutating func readOptional<T: MLSDecodable>(of type: T.Type = T.self) throws(MLSCodecError) -> T? {
        try readOptional { (sub: inout MLSReader) throws(MLSCodecError) -> T in
            try T(from: &sub)
        }
    }

    /// Reads a decodable value in place.
    public mutating func read<T: MLSDecodable>(_ type: T.Type = T.self) throws(MLSCodecError) -> T {
        try T(from: &self)
    }

    /// The bytes from `start` up to the current position (for re-hashing exactly what was read).
    func bytes(from start: Int) -> [UInt8] {
        Array(base[start..<cursor])
    }

    /// The current read position in the underlying buffer.
    var position: Int {
        cursor
    }
}
