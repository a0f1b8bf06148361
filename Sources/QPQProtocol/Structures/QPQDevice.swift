/// One device of an account, as `ListDevices` returns it.
public struct QPQDevice: Sendable, Equatable {
    public var deviceId: UInt64
    public var name: String
    /// The device's ML-DSA-65 identity key (1952 bytes).
    public var identityKey: [UInt8]
    /// Unix time in milliseconds.
    public var createdAt: UInt64
    /// Whether this is the device of the connection that asked.
    public var isCurrent: Bool

    public init(deviceId: UInt64, name: String, identityKey: [UInt8], createdAt: UInt64, isCurrent: Bool) {
        self.deviceId = deviceId
        self.name = name
        self.identityKey = identityKey
        self.createdAt = createdAt
        self.isCurrent = isCurrent
    }
}
