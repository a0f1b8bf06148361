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
}
