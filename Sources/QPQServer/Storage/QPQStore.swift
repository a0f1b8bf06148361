import QPQProtocol

/// Everything qpqd keeps, behind one protocol: accounts, devices, sessions, KeyPackages, groups and
/// queues. Every method is one transaction; domain refusals throw ``QPQServiceError`` with the
/// protocol's code, storage failures `QPQServiceError(.internal, ...)`. Nothing here may be kept
/// only in one process's memory: several servers are meant to share one database.
package protocol QPQStore: Sendable {
    // MARK: Accounts and devices
    func createUser(name: String, record: [UInt8], now: UInt64) throws(QPQServiceError) -> UInt64
    func user(named name: String) throws(QPQServiceError) -> QPQStoredUser?
    func userName(id: UInt64) throws(QPQServiceError) -> String?
    func device(id: UInt64) throws(QPQServiceError) -> QPQStoredDevice?
    func liveDevices(userId: UInt64) throws(QPQServiceError) -> [QPQStoredDevice]
    func addDevice(userId: UInt64, name: String, identityKey: [UInt8], now: UInt64) throws(QPQServiceError) -> UInt64
    /// Marks the device revoked and deletes its sessions, queue, KeyPackages and memberships.
    func revokeDevice(userId: UInt64, deviceId: UInt64) throws(QPQServiceError)

    // MARK: Sessions (only SHA-256 of the token is stored)
    func createSession(tokenHash: [UInt8], deviceId: UInt64, now: UInt64) throws(QPQServiceError)
    func sessionDevice(tokenHash: [UInt8]) throws(QPQServiceError) -> UInt64?
    func deleteSession(tokenHash: [UInt8]) throws(QPQServiceError)

    // MARK: KeyPackages
    func addKeyPackages(deviceId: UInt64, packages: [[UInt8]], lastResort: Bool) throws(QPQServiceError) -> (oneTime: Int, hasLastResort: Bool)
    func keyPackageCount(deviceId: UInt64) throws(QPQServiceError) -> (oneTime: Int, hasLastResort: Bool)
    /// One package per live device of the user: the oldest one-time one (deleted), else the last-resort one (kept).
    func takeKeyPackages(userId: UInt64) throws(QPQServiceError) -> [QPQDeviceKeyPackage]

    // MARK: Groups and delivery
    func createGroup(groupId: [UInt8], tokenHash: [UInt8], creator: UInt64, now: UInt64) throws(QPQServiceError)
    func commit(_ request: QPQCommitRequest, now: UInt64) throws(QPQServiceError) -> QPQDelivery
    func send(groupId: [UInt8], epoch: UInt64, tokenHash: [UInt8], message: [UInt8], now: UInt64) throws(QPQServiceError) -> QPQDelivery
    /// Sets the group's disappearing-message timer (token-authorized, current epoch only).
    func setDisappearing(groupId: [UInt8], epoch: UInt64, tokenHash: [UInt8], seconds: UInt32) throws(QPQServiceError)
    /// Deletes every expired message (queue entries and contents); returns how many messages.
    func expire(now: UInt64) throws(QPQServiceError) -> Int
    func groups(deviceId: UInt64) throws(QPQServiceError) -> [QPQGroupSummary]
    func members(groupId: [UInt8]) throws(QPQServiceError) -> (epoch: UInt64, members: [QPQMember])?

    // MARK: Queues
    /// The oldest queued envelopes with an id above `after`, at most `limit` and about `maxBytes`.
    func fetch(deviceId: UInt64, after: UInt64, limit: Int, maxBytes: Int) throws(QPQServiceError) -> (envelopes: [QPQEnvelope], more: Bool)
    /// ``fetch(deviceId:after:limit:maxBytes:)`` for several devices in one read transaction (push).
    func fetchMany(_ requests: [(deviceId: UInt64, after: UInt64)], limit: Int, maxBytes: Int) throws(QPQServiceError)
        -> [(envelopes: [QPQEnvelope], more: Bool)]
    /// Deletes these envelopes from the device's queue; returns how many were there.
    func ack(deviceId: UInt64, messageIds: [UInt64]) throws(QPQServiceError) -> Int
}
