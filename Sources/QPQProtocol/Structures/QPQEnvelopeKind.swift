/// What a queued envelope carries.
public enum QPQEnvelopeKind: UInt8, Sendable, Equatable, CaseIterable {
    /// An MLS PrivateMessage (application data).
    case application = 1
    /// An MLS Commit.
    case commit = 2
    /// An MLS Welcome for this device.
    case welcome = 3
}
