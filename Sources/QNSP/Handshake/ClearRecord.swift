import QNSPCrypto

/// A handshake message sent before traffic keys exist, padded with zeros to a
/// whole number of cells so that it looks like any other run of cells by size.
///
/// Layout: `"QNSP"(4) | version(1) | type(1) | cellSize(2) | bodyLength(4) | body | zeros`.
public struct ClearRecord: Sendable, Equatable {
    public static let magic: [UInt8] = Array("QNSP".utf8)
    public static let headerSize = 12

    /// Types of clear handshake records.
    public enum MessageType: UInt8, Sendable {
        case clientHello = 1
        case serverHello = 2
        case hostKeyRequest = 3
        case hostKeyAnnouncement = 4
        case reject = 5
        case retry = 6
    }

    public var version: UInt8
    public var type: MessageType
    public var cellSize: Int
    public var body: [UInt8]

    public init(version: UInt8, type: MessageType, cellSize: Int, body: [UInt8]) {
        self.version = version
        self.type = type
        self.cellSize = cellSize
        self.body = body
    }

    /// Serialized record, padded to a multiple of `cellSize`.
    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.paddedSize(bodyLength: body.count, cellSize: cellSize))
        w.write(bytes: Self.magic)
        w.write(version)
        w.write(type.rawValue)
        w.write(UInt16(cellSize))
        w.write(UInt32(body.count))
        w.write(bytes: body)
        var out = w.bytes
        out += [UInt8](repeating: 0, count: Self.paddedSize(bodyLength: body.count, cellSize: cellSize) - out.count)
        return out
    }

    public static func paddedSize(bodyLength: Int, cellSize: Int) -> Int {
        let raw = headerSize + bodyLength
        return (raw + cellSize - 1) / cellSize * cellSize
    }

    /// Parses one record from the front of `buffer`.
    /// Returns nil when more bytes are needed; throws on anything malformed.
    /// - Parameter expectedCellSize: nil accepts any valid cell size (the server's first read).
    public static func parse(
        _ buffer: ArraySlice<UInt8>, expectedCellSize: Int?, maxBodySize: Int
    ) throws(QNSPError) -> (record: ClearRecord, raw: ArraySlice<UInt8>)? {
        let b = buffer
        let s = b.startIndex
        // Reject a wrong magic as soon as the bytes that show it arrive.
        for i in 0..<min(4, b.count) where b[s + i] != magic[i] { throw .badMagic }
        guard b.count >= headerSize else { return nil }
        let version = b[s + 4]
        let typeByte = b[s + 5]
        let cellSize = Int(b[s + 6]) << 8 | Int(b[s + 7])
        let bodyLength = Int(b[s + 8]) << 24 | Int(b[s + 9]) << 16 | Int(b[s + 10]) << 8 | Int(b[s + 11])
        if let expected = expectedCellSize {
            guard cellSize == expected else { throw .cellSizeMismatch(expected: expected, actual: cellSize) }
        } else {
            guard QNSPConfiguration.validate(cellSize: cellSize) else { throw .unsupportedCellSize(cellSize) }
        }
        guard let type = MessageType(rawValue: typeByte) else { throw .unexpectedMessage("clear record type \(typeByte)") }
        guard bodyLength <= maxBodySize else { throw .handshakeMessageTooLarge(bodyLength) }
        let total = paddedSize(bodyLength: bodyLength, cellSize: cellSize)
        guard b.count >= total else { return nil }
        let bodyEnd = s + headerSize + bodyLength
        for i in bodyEnd..<(s + total) where b[i] != 0 { throw .nonZeroPadding }
        let record = ClearRecord(version: version, type: type, cellSize: cellSize, body: Array(b[(s + headerSize)..<bodyEnd]))
        return (record, b[s..<(s + total)])
    }
}
