import QPQProtocol

/// The store-independent checks of a request, made on what a store read inside the request's
/// transaction, so that ``GRDBStore`` and `PostgresStore` refuse the same requests with the same
/// codes, details and messages (docs/messaging.md §9). The SQL that reads the inputs stays in each store.
package enum QPQRequestChecks {
    /// The group's epoch and token (constant-time hash comparison); `stored` nil: no such group.
    @discardableResult
    package static func group(_ stored: QPQGroupState?, epoch: UInt64, tokenHash: [UInt8]) throws(QPQServiceError) -> QPQGroupState {
        guard let stored else { throw QPQServiceError(.unknownGroup, "no such group") }
        guard stored.epoch == epoch else {
            throw QPQServiceError(.epochMoved, "the group is at epoch \(stored.epoch), not \(epoch): process its commits and retry",
                                  detail: stored.epoch)
        }
        guard QPQConstantTime.equals(stored.tokenHash, tokenHash) else {
            throw QPQServiceError(.badToken, "the group token does not match this epoch's")
        }
        return stored
    }

    /// Refuses the whole delivery if one recipient's queue is full, naming the first such recipient
    /// in `recipients` order. `queued`: envelopes queued per device (absent: none).
    package static func queues(_ recipients: [UInt64], queued: [UInt64: Int]) throws(QPQServiceError) {
        if let d = recipients.first(where: { queued[$0, default: 0] >= QPQLimits.maxQueue }) {
            throw QPQServiceError(.limitExceeded, "the queue of device \(d) is full (\(QPQLimits.maxQueue) envelopes)")
        }
    }

    /// What an accepted commit changes, from ``commit(_:members:liveAdds:)``.
    package struct CommitPlan: Sendable, Equatable {
        /// The queues the commit writes to, in the order their fullness is checked: the members
        /// before the commit (the commit message), then the welcomed devices.
        package var queues: [UInt64]
        /// The devices with something new queued, ascending (for push).
        package var recipients: [UInt64]
    }

    /// Checks a commit's membership change: every device to add is live (`liveAdds`: those of
    /// `request.add` that exist and are not revoked), the group stays within
    /// ``QPQLimits/maxMembers``, and every welcome is for an added device.
    package static func commit(_ request: QPQCommitRequest, members before: [UInt64], liveAdds: Set<UInt64>) throws(QPQServiceError)
        -> CommitPlan {
        var after = Set(before)
        for d in request.remove { after.remove(d) }
        if let d = request.add.first(where: { !liveAdds.contains($0) }) {
            throw QPQServiceError(.unknownDevice, "device \(d) to add does not exist or was revoked")
        }
        after.formUnion(request.add)
        guard after.count <= QPQLimits.maxMembers else {
            throw QPQServiceError(.limitExceeded, "a group has at most \(QPQLimits.maxMembers) member devices")
        }
        if let w = request.welcomes.first(where: { !request.add.contains($0.deviceId) }) {
            throw QPQServiceError(.malformed, "a welcome for device \(w.deviceId), which the commit does not add")
        }
        let welcomed = request.welcomes.map(\.deviceId)
        return CommitPlan(queues: before + welcomed, recipients: Set(before).union(welcomed).sorted())
    }

    /// The epoch guard's outcome: `changed` rows of `UPDATE ... WHERE id = ? AND epoch = ?`.
    package static func epochUpdate(changed: Int, epoch: UInt64) throws(QPQServiceError) {
        guard changed == 1 else { throw QPQServiceError(.epochMoved, "another commit won epoch \(epoch)", detail: epoch + 1) }
    }

    /// A new device for an account with `live` unrevoked devices.
    package static func deviceLimit(live: Int) throws(QPQServiceError) {
        guard live < QPQLimits.maxDevices else {
            throw QPQServiceError(.limitExceeded, "an account has at most \(QPQLimits.maxDevices) devices; revoke one first")
        }
    }

    /// Revoking `deviceId` of `userId`; `stored` is the device's owner and flag (nil: no such device).
    package static func revocation(_ stored: (userId: UInt64, revoked: Bool)?, userId: UInt64, deviceId: UInt64) throws(QPQServiceError) {
        guard let stored, stored.userId == userId else { throw QPQServiceError(.unknownDevice, "no device \(deviceId) in this account") }
        guard !stored.revoked else { throw QPQServiceError(.deviceRevoked, "device \(deviceId) is already revoked") }
    }

    /// Checks an upload of `count` KeyPackages to a device that holds `stored`, and returns the
    /// counts after it: a last-resort upload is one package and replaces the last-resort one; one-time
    /// ones stay within ``QPQLimits/maxStoredKeyPackages``.
    package static func keyPackageUpload(count: Int, lastResort: Bool, stored: (oneTime: Int, hasLastResort: Bool))
        throws(QPQServiceError) -> (oneTime: Int, hasLastResort: Bool) {
        if lastResort {
            guard count == 1 else { throw QPQServiceError(.malformed, "a last-resort upload carries exactly one package") }
            return (stored.oneTime, true)
        }
        guard count <= QPQLimits.maxStoredKeyPackages - stored.oneTime else {
            throw QPQServiceError(.limitExceeded, "at most \(QPQLimits.maxStoredKeyPackages) one-time KeyPackages per device (\(stored.oneTime) stored)")
        }
        return (stored.oneTime + count, stored.hasLastResort)
    }

    /// The refusals of a taken name or group id (the stores find them differently).
    package static func userExists(_ name: String) -> QPQServiceError { QPQServiceError(.userExists, "the user name \(name) is taken") }
    package static let groupExists = QPQServiceError(.groupExists, "a group with this id exists")
}
