/// An MLS Welcome addressed to one device, carried by a `Commit`.
public struct QPQWelcome: Sendable, Equatable {
    public var deviceId: UInt64
    public var welcome: [UInt8]
    public init(deviceId: UInt64, welcome: [UInt8]) {
        self.deviceId = deviceId
        self.welcome = welcome
    }
}
