/// Sans-I/O SFTP framing: feed raw bytes, take out complete packet bodies.
///
/// A body is everything after the uint32 length (type byte first). Lengths of
/// zero or above `maxPacketLength` are rejected; after such an error the stream
/// cannot be resynchronised and every further `next()` throws again.
public struct SFTPPacketReader: Sendable {
    /// 256 KiB of payload plus 1 KiB for headers.
    public static let defaultMaxPacketLength = 256 * 1024 + 1024

    public let maxPacketLength: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var failure: SFTPError?

    public init(maxPacketLength: Int = SFTPPacketReader.defaultMaxPacketLength) {
        self.maxPacketLength = maxPacketLength
    }

    /// Bytes received but not yet returned as packets.
    public var bufferedByteCount: Int { buffer.count - start }

    public mutating func feed<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if start > 0 && (start >= 65536 || start == buffer.count) {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete packet body, or nil if more bytes are needed.
    public mutating func next() throws(SFTPError) -> ArraySlice<UInt8>? {
        if let failure { throw failure }
        guard buffer.count - start >= 4 else { return nil }
        let length = buffer[start..<start + 4].reduce(0) { $0 << 8 | Int($1) }
        if length == 0 { failure = .emptyPacket; throw .emptyPacket }
        if length > maxPacketLength { failure = .packetTooLarge(length); throw .packetTooLarge(length) }
        guard buffer.count - start - 4 >= length else { return nil }
        let body = buffer[start + 4..<start + 4 + length]
        start += 4 + length
        return body
    }
}
