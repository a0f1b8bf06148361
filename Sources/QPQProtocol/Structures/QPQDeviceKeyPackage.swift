/// A KeyPackage of one device, as `FetchKeyPackages` returns it.
public struct QPQDeviceKeyPackage: Sendable, Equatable {
    public var deviceId: UInt64
    public var keyPackage: [UInt8]
    public init(deviceId: UInt64, keyPackage: [UInt8]) {
        self.deviceId = deviceId
        self.keyPackage = keyPackage
    }
}
