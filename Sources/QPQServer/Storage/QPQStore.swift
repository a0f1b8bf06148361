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
    /// Deletes every expired message (queue entries and contents) and expired blob; returns how many messages and blobs.
    func expire(now: UInt64) throws(QPQServiceError) -> Int
    func groups(deviceId: UInt64) throws(QPQServiceError) -> [QPQGroupSummary]
    func members(groupId: [UInt8]) throws(QPQServiceError) -> (epoch: UInt64, members: [QPQMember])?

    // MARK: Blobs (encrypted files, docs/messaging.md §6.4)
    /// Reserves a blob for `userId`'s `deviceId`, which must be a member of the group; checks size, quota and rate.
    func createBlob(id: [UInt8], groupId: [UInt8], userId: UInt64, deviceId: UInt64, size: UInt64, now: UInt64,
                    limits: QPQRateLimits) throws(QPQServiceError) -> QPQBlobInfo
    /// Appends at `offset` (= bytes received) a piece of a blob `userId` created.
    func appendBlob(id: [UInt8], userId: UInt64, offset: UInt64, data: [UInt8], now: UInt64) throws(QPQServiceError) -> QPQBlobInfo
    /// The blob's state, for its creator or a member device of its group.
    func blobInfo(id: [UInt8], userId: UInt64, deviceId: UInt64, now: UInt64) throws(QPQServiceError) -> QPQBlobInfo
    /// Bytes `offset..<offset+length` (cut at the end) of a complete blob, for a member device of its group.
    func readBlob(id: [UInt8], deviceId: UInt64, offset: UInt64, length: Int, now: UInt64) throws(QPQServiceError) -> [UInt8]

    // MARK: Queues
    /// The oldest queued envelopes with an id above `after`, at most `limit` and about `maxBytes`.
    func fetch(deviceId: UInt64, after: UInt64, limit: Int, maxBytes: Int) throws(QPQServiceError) -> (envelopes: [QPQEnvelope], more: Bool)
    /// ``fetch(deviceId:after:limit:maxBytes:)`` for several devices in one read transaction (push).
    func fetchMany(_ requests: [(deviceId: UInt64, after: UInt64)], limit: Int, maxBytes: Int) throws(QPQServiceError)
        -> [(envelopes: [QPQEnvelope], more: Bool)]
    /// Deletes these envelopes from the device's queue; returns how many were there.
    func ack(deviceId: UInt64, messageIds: [UInt64]) throws(QPQServiceError) -> Int
}
