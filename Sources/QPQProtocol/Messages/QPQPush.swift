/// A server → client message that answers no request (`requestId` 0, docs/messaging.md §2.3).
public enum QPQPush: Sendable, Equatable {
    case deliver(QPQEnvelope)
    case revoked

    /// The wire type byte.
    public var type: UInt8 {
        switch self {
        case .deliver: return 0xC0
        case .revoked: return 0xC1
        }
    }
}
