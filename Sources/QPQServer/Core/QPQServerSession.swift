import QNSPCrypto
import QOPAQUE
import QPQProtocol

/// The server side of one qpq/1 connection, sans-I/O: ``handle(_:)`` takes a decoded request and
/// returns the response and its effects. It calls the store synchronously, so the NIO driver runs it
/// off the event loop, one request at a time (a value type: the driver hands it to the worker and
/// takes it back).
package struct QPQServerSession: Sendable {
    /// Per-connection progress of the OPAQUE flows and the device it speaks for.
    enum Phase: Sendable {
        case anonymous
        case registering(user: String)
        case loggingIn(PendingLogin)
        case device(userId: UInt64, deviceId: UInt64, tokenHash: [UInt8])
    }

    struct PendingLogin: Sendable {
        var user: String
        var userId: UInt64?
        var login: OPAQUEServerLogin
        var transcriptHash: [UInt8]
        var challenge: [UInt8]
    }

    private let context: QPQServerContext
    private var phase: Phase = .anonymous
    private var tokens: Double
    private var lastRefill: UInt64
    private var failedLogins = 0
    private var lockedUntil: UInt64 = 0

    package init(context: QPQServerContext) {
        self.context = context
        self.tokens = context.limits.burst
        self.lastRefill = context.clock()
    }

    /// The device this connection is logged in as.
    package var device: (userId: UInt64, deviceId: UInt64)? {
        if case .device(let u, let d, _) = phase { return (u, d) }
        return nil
    }

    /// Handles one request; every refusal becomes an `Error` response.
    package mutating func handle(_ request: QPQRequest) -> QPQSessionOutput {
        do throws(QPQServiceError) {
            try takeToken()
            return try dispatch(request)
        } catch {
            return QPQSessionOutput(error.response)
        }
    }

    // MARK: - Rate limit

    private mutating func takeToken() throws(QPQServiceError) {
        let now = context.clock()
        let elapsed = Double(now &- lastRefill) / 1000
        if now > lastRefill {
            tokens = min(context.limits.burst, tokens + elapsed * context.limits.requestsPerSecond)
            lastRefill = now
        }
        guard tokens >= 1 else {
            let wait = UInt64(((1 - tokens) / context.limits.requestsPerSecond * 1000).rounded(.up))
            throw QPQServiceError(.rateLimited, "too many requests on this connection", detail: wait)
        }
        tokens -= 1
    }

    private func requireDevice() throws(QPQServiceError) -> (userId: UInt64, deviceId: UInt64) {
        guard let device else { throw .notAuthenticated }
        return device
    }

    // MARK: - Dispatch

    private mutating func dispatch(_ request: QPQRequest) throws(QPQServiceError) -> QPQSessionOutput {
        let store = context.store
        switch request {
        case .ping:
            return QPQSessionOutput(.pong(serverTime: context.clock()))

        case .registerStart(let user, let requestBytes):
            let request: RegistrationRequest
            do { request = try RegistrationRequest(bytes: requestBytes) } catch {
                throw QPQServiceError(.malformed, "request: \(error)")
            }
            if try store.user(named: user) != nil { throw QPQServiceError(.userExists, "the user name \(user) is taken") }
            let response: RegistrationResponse
            do { response = try context.opaque.registrationResponse(to: request, credentialIdentifier: Array(user.utf8)) } catch {
                throw QPQServiceError(.malformed, "request: \(error)")
            }
            phase = .registering(user: user)
            return QPQSessionOutput(.registerChallenge(response: response.bytes))

        case .registerFinish(let user, let recordBytes):
            guard case .registering(let pending) = phase, pending == user else {
                throw QPQServiceError(.outOfOrder, "RegisterFinish without a RegisterStart for \(user) on this connection")
            }
            do { _ = try RegistrationRecord(bytes: recordBytes) } catch {
                throw QPQServiceError(.malformed, "record: \(error)")
            }
            phase = .anonymous
            _ = try store.createUser(name: user, record: recordBytes, now: context.clock())
            return QPQSessionOutput(.ok)

        case .loginStart(let user, let ke1Bytes):
            let now = context.clock()
            guard now >= lockedUntil else {
                throw QPQServiceError(.rateLimited, "too many failed logins on this connection", detail: lockedUntil - now)
            }
            let ke1: KE1
            do { ke1 = try KE1(bytes: ke1Bytes) } catch { throw QPQServiceError(.malformed, "ke1: \(error)") }
            let stored = try store.user(named: user)
            let record = stored.flatMap { try? RegistrationRecord(bytes: $0.record) }
            let started: (login: OPAQUEServerLogin, ke2: KE2)
            do {
                started = try context.opaque.startLogin(ke1: ke1, record: record, credentialIdentifier: Array(user.utf8))
            } catch {
                throw QPQServiceError(.malformed, "ke1: \(error)")
            }
            let ke2 = started.ke2.bytes
            let challenge = SecureRandom.systemBytes(QPQLimits.challengeSize)
            phase = .loggingIn(PendingLogin(user: user, userId: record == nil ? nil : stored?.id, login: started.login,
                                            transcriptHash: KeyDerivation.sha256(ke1Bytes + ke2), challenge: challenge))
            return QPQSessionOutput(.loginChallenge(ke2: ke2, challenge: challenge))

        case .loginFinish(let ke3Bytes, let deviceId, let deviceName, let identityKey, let signature):
            guard case .loggingIn(var pending) = phase else {
                throw QPQServiceError(.outOfOrder, "LoginFinish without a LoginStart on this connection")
            }
            phase = .anonymous
            do {
                _ = try pending.login.finish(ke3: try KE3(bytes: ke3Bytes))
            } catch {
                try loginFailed()
            }
            guard let userId = pending.userId else { try loginFailed() }
            return try bindDevice(pending: pending, userId: userId, deviceId: deviceId, deviceName: deviceName,
                                  identityKey: identityKey, signature: signature)

        case .resume(let deviceId, let token):
            let hash = KeyDerivation.sha256(token)
            guard let stored = try store.sessionDevice(tokenHash: hash), stored == deviceId,
                  let device = try store.device(id: deviceId), !device.revoked else {
                throw .authenticationFailed
            }
            phase = .device(userId: device.userId, deviceId: deviceId, tokenHash: hash)
            return QPQSessionOutput(.resumed(userId: device.userId, deviceId: deviceId))

        case .logout:
            guard case .device(_, _, let hash) = phase else { throw .notAuthenticated }
            try store.deleteSession(tokenHash: hash)
            phase = .anonymous
            return QPQSessionOutput(.ok)

        case .listDevices:
            let me = try requireDevice()
            let devices = try store.liveDevices(userId: me.userId).map {
                QPQDevice(deviceId: $0.id, name: $0.name, identityKey: $0.identityKey, createdAt: $0.createdAt, isCurrent: $0.id == me.deviceId)
            }
            return QPQSessionOutput(.devices(devices))

        case .revokeDevice(let deviceId):
            let me = try requireDevice()
            try store.revokeDevice(userId: me.userId, deviceId: deviceId)
            var out = QPQSessionOutput(.ok)
            out.revoked = deviceId
            if deviceId == me.deviceId { phase = .anonymous }
            return out

        case .uploadKeyPackages(let lastResort, let packages):
            let me = try requireDevice()
            guard !packages.isEmpty else { throw QPQServiceError(.malformed, "packages: none given") }
            let n = try store.addKeyPackages(deviceId: me.deviceId, packages: packages, lastResort: lastResort)
            return QPQSessionOutput(.keyPackagesStored(oneTime: UInt32(clamping: n.oneTime), hasLastResort: n.hasLastResort))

        case .fetchKeyPackages(let user):
            _ = try requireDevice()
            guard let account = try store.user(named: user) else { throw QPQServiceError(.unknownUser, "no user \(user)") }
            let packages = try store.takeKeyPackages(userId: account.id)
            guard !packages.isEmpty else { throw QPQServiceError(.noKeyPackage, "\(user) has no device with a KeyPackage") }
            return QPQSessionOutput(.keyPackages(packages))

        case .keyPackageCount:
            let me = try requireDevice()
            let n = try store.keyPackageCount(deviceId: me.deviceId)
            return QPQSessionOutput(.keyPackageCountIs(oneTime: UInt32(clamping: n.oneTime), hasLastResort: n.hasLastResort))

        case .lookupUser(let user):
            _ = try requireDevice()
            guard let account = try store.user(named: user) else { throw QPQServiceError(.unknownUser, "no user \(user)") }
            let devices = try store.liveDevices(userId: account.id).map { QPQUserDevice(deviceId: $0.id, identityKey: $0.identityKey) }
            return QPQSessionOutput(.user(userId: account.id, user: account.name, devices: devices))

        case .createGroup(let groupId, let tokenHash):
            let me = try requireDevice()
            try store.createGroup(groupId: groupId, tokenHash: tokenHash, creator: me.deviceId, now: context.clock())
            return QPQSessionOutput(.ok)

        case .commit(let groupId, let epoch, let token, let nextTokenHash, let add, let remove, let commit, let welcomes):
            let request = QPQCommitRequest(groupId: groupId, epoch: epoch, tokenHash: KeyDerivation.sha256(token),
                                           nextTokenHash: nextTokenHash, add: add, remove: remove, commit: commit, welcomes: welcomes)
            let delivery = try store.commit(request, now: context.clock())
            var out = QPQSessionOutput(.committed(epoch: delivery.epoch, messageId: delivery.messageId))
            out.notify = delivery.recipients
            return out

        case .send(let groupId, let epoch, let token, let message):
            let delivery = try store.send(groupId: groupId, epoch: epoch, tokenHash: KeyDerivation.sha256(token), message: message,
                                          now: context.clock())
            var out = QPQSessionOutput(.sent(messageId: delivery.messageId))
            out.notify = delivery.recipients
            return out

        case .fetch(let limit):
            let me = try requireDevice()
            let batch = try store.fetch(deviceId: me.deviceId, after: 0, limit: Int(limit), maxBytes: QPQLimits.maxFetchBytes)
            return QPQSessionOutput(.messages(batch.envelopes, more: batch.more))

        case .ack(let ids):
            let me = try requireDevice()
            let n = try store.ack(deviceId: me.deviceId, messageIds: ids)
            return QPQSessionOutput(.acked(deleted: UInt16(clamping: n)))

        case .subscribe:
            let me = try requireDevice()
            var out = QPQSessionOutput(.ok)
            out.subscribe = me.deviceId
            return out

        case .listGroups:
            let me = try requireDevice()
            return QPQSessionOutput(.groups(try store.groups(deviceId: me.deviceId)))

        case .setDisappearing(let groupId, let epoch, let token, let seconds):
            try store.setDisappearing(groupId: groupId, epoch: epoch, tokenHash: KeyDerivation.sha256(token), seconds: seconds)
            return QPQSessionOutput(.ok)

        case .blobCreate(let groupId, let size):
            let me = try requireDevice()
            let id = SecureRandom.systemBytes(QPQLimits.blobIdSize)
            let info = try store.createBlob(id: id, groupId: groupId, userId: me.userId, deviceId: me.deviceId, size: size,
                                            now: context.clock(), limits: context.limits)
            return QPQSessionOutput(.blobCreated(blobId: id, expiresAt: info.expiresAt))

        case .blobUpload(let blobId, let offset, let data):
            let me = try requireDevice()
            let info = try store.appendBlob(id: blobId, userId: me.userId, offset: offset, data: data, now: context.clock())
            return QPQSessionOutput(.blobState(size: info.size, received: info.received, expiresAt: info.expiresAt))

        case .blobStatus(let blobId):
            let me = try requireDevice()
            let info = try store.blobInfo(id: blobId, userId: me.userId, deviceId: me.deviceId, now: context.clock())
            return QPQSessionOutput(.blobState(size: info.size, received: info.received, expiresAt: info.expiresAt))

        case .blobDownload(let blobId, let offset, let length):
            let me = try requireDevice()
            return QPQSessionOutput(.blobData(data: try store.readBlob(id: blobId, deviceId: me.deviceId, offset: offset,
                                                                       length: Int(length), now: context.clock())))

        case .groupMembers(let groupId):
            let me = try requireDevice()
            guard let found = try store.members(groupId: groupId), found.members.contains(where: { $0.deviceId == me.deviceId }) else {
                throw QPQServiceError(.unknownGroup, "no such group with this device as a member")
            }
            return QPQSessionOutput(.members(epoch: found.epoch, found.members))
        }
    }

    /// Counts a failed login (locking the connection out after too many) and throws the one answer.
    private mutating func loginFailed() throws(QPQServiceError) -> Never {
        failedLogins += 1
        if failedLogins >= context.limits.maxFailedLogins {
            failedLogins = 0
            lockedUntil = context.clock() + context.limits.lockoutMilliseconds
        }
        throw .authenticationFailed
    }

    /// After a good KE3: checks the device's proof of its identity key and binds it to the account.
    private mutating func bindDevice(pending: PendingLogin, userId: UInt64, deviceId: UInt64, deviceName: String,
                                     identityKey: [UInt8], signature: [UInt8]) throws(QPQServiceError) -> QPQSessionOutput {
        let store = context.store
        let key: SignatureScheme.PublicKey
        do { key = try SignatureScheme.PublicKey(rawRepresentation: identityKey) } catch {
            throw QPQServiceError(.badSignature, "identityKey is not an ML-DSA-65 public key")
        }
        let message = QPQDeviceLogin.signedMessage(challenge: pending.challenge, transcriptHash: pending.transcriptHash,
                                                   user: pending.user, deviceId: deviceId)
        guard key.isValidSignature(signature, for: message, context: QPQDeviceLogin.context) else {
            throw QPQServiceError(.badSignature, "the device's signature over the login challenge does not verify")
        }
        let now = context.clock()
        let bound: UInt64
        if deviceId == 0 {
            bound = try store.addDevice(userId: userId, name: deviceName, identityKey: identityKey, now: now)
        } else {
            guard let device = try store.device(id: deviceId), device.userId == userId else {
                throw QPQServiceError(.unknownDevice, "no device \(deviceId) in this account")
            }
            guard !device.revoked else { throw QPQServiceError(.deviceRevoked, "device \(deviceId) was revoked; log in as a new device") }
            guard QPQConstantTime.equals(device.identityKey, identityKey) else {
                throw QPQServiceError(.badSignature, "this is not the identity key of device \(deviceId)")
            }
            bound = deviceId
        }
        let token = SecureRandom.systemBytes(QPQLimits.tokenSize)
        let hash = KeyDerivation.sha256(token)
        try store.createSession(tokenHash: hash, deviceId: bound, now: now)
        phase = .device(userId: userId, deviceId: bound, tokenHash: hash)
        return QPQSessionOutput(.loggedIn(userId: userId, deviceId: bound, token: token))
    }
}
