/// One queued message for a device (docs/messaging.md §2.2). It has no sender field.
public struct QPQEnvelope: Sendable, Equatable {
    /// Server-wide increasing id; clients dedupe by it and `Ack` it.
    public var messageId: UInt64
    public var groupId: [UInt8]
    public var epoch: UInt64
    public var kind: QPQEnvelopeKind
    /// Unix time in milliseconds when the server accepted it.
    public var serverTime: UInt64
    /// Unix time in milliseconds when the server deletes it (and clients should); 0: never.
    public var expiresAt: UInt64
    public var payload: [UInt8]

    public init(messageId: UInt64, groupId: [UInt8], epoch: UInt64, kind: QPQEnvelopeKind, serverTime: UInt64, expiresAt: UInt64 = 0,
                payload: [UInt8]) {
        self.expiresAt = expiresAt
        self.messageId = messageId
        self.groupId = groupId
        self.epoch = epoch
        self.kind = kind
        self.serverTime = serverTime
        self.payload = payload
    }

    /// Encoded size (for the `Messages` byte budget).
    public var encodedSize: Int { 8 + 1 + groupId.count + 8 + 1 + 8 + 8 + 4 + payload.count }
}
