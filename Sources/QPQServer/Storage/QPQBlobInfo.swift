/// What the store holds about one blob (docs/messaging.md §6.4).
package struct QPQBlobInfo: Sendable, Equatable {
    package var size: UInt64
    package var received: UInt64
    package var expiresAt: UInt64
}
