/// What the store holds about one blob (docs/messaging.md §6.4).
package struct QPQBlobInfo: Sendable, Equatable {
    package var size: UInt64
    package var received: UInt64
    package var expiresAt: UInt64

    package init(size: UInt64, received: UInt64, expiresAt: UInt64) {
        self.size = size
        self.received = received
        self.expiresAt = expiresAt
    }

    /// The one refusal for a blob that was never created, expired, or is not the asker's to see.
    package static let unknown = QPQServiceError(.unknownBlob, "no such blob (never created, expired, or not for this device)")

    /// The state after appending `count` bytes at `offset`, which must be the bytes received so
    /// far, without passing the size.
    package func appending(offset: UInt64, count: Int) throws(QPQServiceError) -> QPQBlobInfo {
        guard offset == received else {
            throw QPQServiceError(.wrongOffset, "the server holds \(received) bytes of this blob; upload from there", detail: received)
        }
        let left = size >= received ? size - received : 0
        guard UInt64(clamping: count) <= left else {
            throw QPQServiceError(.tooLarge, "\(count) bytes at \(offset) pass the blob's size \(size)", detail: size)
        }
        var next = self
        next.received += UInt64(clamping: count)
        return next
    }
}
