/// A member device of a group with its account.
public struct QPQMember: Sendable, Equatable {
    public var deviceId: UInt64
    public var userId: UInt64
    public var user: String
    public init(deviceId: UInt64, userId: UInt64, user: String) {
        self.deviceId = deviceId
        self.userId = userId
        self.user = user
    }
}
