/// A live device of a looked-up user: its id and ML-DSA-65 identity key.
public struct QPQUserDevice: Sendable, Equatable {
    public var deviceId: UInt64
    public var identityKey: [UInt8]
    public init(deviceId: UInt64, identityKey: [UInt8]) {
        self.deviceId = deviceId
        self.identityKey = identityKey
    }
}
