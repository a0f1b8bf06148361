/// Cuts a byte stream into frame bodies (sans-I/O): `append` what arrives, then call ``next()``
/// until it returns nil. A length over the limit is refused before its bytes are buffered (a large
/// `Commit` once its type byte has arrived).
public struct QPQFrameSplitter: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0
    /// After a stream-breaking error every call throws it again.
    private var failure: QPQDecodeError?

    /// Which frames may be longer than ``QPQLimits/maxFrame`` (up to ``QPQLimits/maxLargeFrame``).
    public enum LargeFrames: Sendable, Equatable {
        /// None (a server before login).
        case refused
        /// `Commit` requests only (a server once the connection has a logged-in device): the
        /// type byte is read before anything past the header is accepted.
        case commitRequests
        /// Any (a client: everything the server sends).
        case accepted
    }

    /// The type byte of `Commit` (docs/messaging.md §2.1).
    public static let commitType: UInt8 = 0x0F

    /// May change between frames (the server raises it after login).
    public var largeFrames: LargeFrames

    public init(largeFrames: LargeFrames = .refused) { self.largeFrames = largeFrames }

    /// Bytes received but not yet returned as a body.
    public var bufferedCount: Int { buffer.count - start }

    /// The length of the frame whose header has arrived but whose body has not been returned yet.
    public var pendingFrameLength: Int? {
        guard bufferedCount >= 4 else { return nil }
        var length = 0
        for i in 0..<4 { length = length << 8 | Int(buffer[start + i]) }
        return length
    }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame body, or nil if more bytes are needed.
    public mutating func next() throws(QPQDecodeError) -> [UInt8]? {
        if let failure { throw failure }
        guard bufferedCount >= 4 else { compact(); return nil }
        var length = 0
        for i in 0..<4 { length = length << 8 | Int(buffer[start + i]) }
        guard length > 0 else { failure = .emptyFrame; throw .emptyFrame }
        guard length <= QPQLimits.maxFrame || (largeFrames != .refused && length <= QPQLimits.maxLargeFrame) else {
            failure = .tooLarge(length: length)
            throw .tooLarge(length: length)
        }
        if length > QPQLimits.maxFrame && largeFrames == .commitRequests {
            // body = version || type || ...: wait for the type byte, then only a Commit may go on.
            guard bufferedCount >= 6 else { compact(); return nil }
            guard buffer[start + 5] == Self.commitType else {
                failure = .tooLarge(length: length)
                throw .tooLarge(length: length)
            }
        }
        guard bufferedCount >= 4 + length else { compact(); return nil }
        let body = Array(buffer[(start + 4)..<(start + 4 + length)])
        start += 4 + length
        return body
    }

    private mutating func compact() {
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
    }
}
