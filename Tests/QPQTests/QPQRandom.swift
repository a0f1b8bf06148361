import QPQProtocol
import QSSHTestSupport

/// The fuzz generator of these tests: the shared seeded SplitMix64 with qpq-shaped inputs.
typealias QPQRandom = SplitMix64

extension SplitMix64 {
    mutating func bytes(upTo max: Int, min: Int = 0) -> [UInt8] {
        // Mostly short, sometimes at the limit, so both edges are covered.
        let n: Int
        switch Int.random(in: 0..<10, using: &self) {
        case 0: n = max
        case 1: n = min
        default: n = Int.random(in: min...Swift.min(max, min + 64), using: &self)
        }
        return bytes(n)
    }
    mutating func u64() -> UInt64 { next() >> UInt64.random(in: 0...63, using: &self) }
    mutating func userName() -> String {
        let first = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        let rest = first + Array("._-")
        let n = Int.random(in: 1...32, using: &self)
        var s = String(first.randomElement(using: &self) ?? "a")
        for _ in 1..<n { s.append(rest.randomElement(using: &self) ?? "a") }
        return s
    }
    mutating func text(maxBytes: Int) -> String {
        let alphabet = Array("abc XYZ 019 éü ✓ 日本 🔑")
        var s = ""
        for _ in 0..<Int.random(in: 0...24, using: &self) {
            let c = alphabet.randomElement(using: &self) ?? "a"
            if s.utf8.count + String(c).utf8.count > maxBytes { break }
            s.append(c)
        }
        return s
    }
    mutating func groupId() -> [UInt8] { bytes(upTo: QPQLimits.maxGroupId, min: 1) }
    mutating func count(_ max: Int) -> Int { Int.random(in: 0...Swift.min(max, 4), using: &self) }

    mutating func envelope() -> QPQEnvelope {
        QPQEnvelope(messageId: u64(), groupId: groupId(), epoch: u64(),
                    kind: QPQEnvelopeKind.allCases.randomElement(using: &self) ?? .application,
                    serverTime: u64(), expiresAt: u64(), payload: bytes(upTo: 300, min: 1))
    }

    /// A random valid request of every type.
    mutating func request() -> QPQRequest {
        let L = QPQLimits.self
        switch Int.random(in: 0..<26, using: &self) {
        case 0: return .ping
        case 1: return .registerStart(user: userName(), request: bytes(L.registrationRequestSize))
        case 2: return .registerFinish(user: userName(), record: bytes(L.registrationRecordSize))
        case 3: return .loginStart(user: userName(), ke1: bytes(L.ke1Size))
        case 4: return .loginFinish(ke3: bytes(L.ke3Size), deviceId: u64(), deviceName: text(maxBytes: L.maxDeviceName),
                                    identityKey: bytes(L.identityKeySize), signature: bytes(L.signatureSize))
        case 5: return .resume(deviceId: u64(), token: bytes(L.tokenSize))
        case 6: return .logout
        case 7: return .listDevices
        case 8: return .revokeDevice(deviceId: u64())
        case 9: return .uploadKeyPackages(lastResort: Bool.random(using: &self),
                                          packages: (0..<count(L.maxKeyPackagesPerUpload)).map { _ in bytes(upTo: 200, min: 1) })
        case 10: return .fetchKeyPackages(user: userName())
        case 11: return .keyPackageCount
        case 12: return .lookupUser(user: userName())
        case 13: return .createGroup(groupId: groupId(), tokenHash: bytes(L.tokenSize))
        case 14:
            return .commit(groupId: groupId(), epoch: u64(), token: bytes(L.tokenSize), nextTokenHash: bytes(L.tokenSize),
                           add: (0..<count(9)).map { _ in u64() }, remove: (0..<count(9)).map { _ in u64() },
                           commit: bytes(upTo: 300, min: 1),
                           welcomes: (0..<count(5)).map { _ in QPQWelcome(deviceId: u64(), welcome: bytes(upTo: 100, min: 1)) })
        case 15: return .send(groupId: groupId(), epoch: u64(), token: bytes(L.tokenSize), message: bytes(upTo: 500, min: 1))
        case 16: return .fetch(limit: UInt16.random(in: 1...UInt16(L.maxFetch), using: &self))
        case 17: return .ack(messageIds: (0..<count(L.maxAck)).map { _ in u64() })
        case 18: return .subscribe
        case 19: return .listGroups
        case 20: return .groupMembers(groupId: groupId())
        case 22: return .blobCreate(groupId: groupId(), size: UInt64.random(in: 0...L.maxBlobSize, using: &self))
        case 23: return .blobUpload(blobId: bytes(L.blobIdSize), offset: u64(), data: bytes(upTo: 400, min: 1))
        case 24: return .blobStatus(blobId: bytes(L.blobIdSize))
        case 25: return .blobDownload(blobId: bytes(L.blobIdSize), offset: u64(),
                                      length: UInt32.random(in: 1...UInt32(L.maxBlobPiece), using: &self))
        default: return .setDisappearing(groupId: groupId(), epoch: u64(), token: bytes(QPQLimits.tokenSize),
                                         seconds: UInt32.random(in: 0...QPQLimits.maxDisappearSeconds, using: &self))
        }
    }

    /// A random valid response of every type.
    mutating func response() -> QPQResponse {
        let L = QPQLimits.self
        switch Int.random(in: 0..<21, using: &self) {
        case 0: return .ok
        case 1: return .pong(serverTime: u64())
        case 2: return .registerChallenge(response: bytes(L.registrationResponseSize))
        case 3: return .loginChallenge(ke2: bytes(L.ke2Size), challenge: bytes(L.challengeSize))
        case 4: return .loggedIn(userId: u64(), deviceId: u64(), token: bytes(L.tokenSize))
        case 5: return .resumed(userId: u64(), deviceId: u64())
        case 6: return .devices((0..<count(L.maxDevices)).map { _ in
                QPQDevice(deviceId: u64(), name: text(maxBytes: L.maxDeviceName), identityKey: bytes(L.identityKeySize),
                          createdAt: u64(), isCurrent: Bool.random(using: &self)) })
        case 7: return .keyPackagesStored(oneTime: UInt32.random(in: 0...UInt32.max, using: &self), hasLastResort: Bool.random(using: &self))
        case 8: return .keyPackages((0..<count(L.maxDevices)).map { _ in QPQDeviceKeyPackage(deviceId: u64(), keyPackage: bytes(upTo: 100, min: 1)) })
        case 9: return .keyPackageCountIs(oneTime: UInt32.random(in: 0...200, using: &self), hasLastResort: Bool.random(using: &self))
        case 10: return .user(userId: u64(), user: userName(),
                              devices: (0..<count(L.maxDevices)).map { _ in QPQUserDevice(deviceId: u64(), identityKey: bytes(L.identityKeySize)) })
        case 11: return .committed(epoch: u64(), messageId: u64())
        case 12: return .sent(messageId: u64())
        case 13: return .messages((0..<count(L.maxFetch)).map { _ in envelope() }, more: Bool.random(using: &self))
        case 14: return .acked(deleted: UInt16.random(in: 0...500, using: &self))
        case 15: return .groups((0..<count(L.maxMembers)).map { _ in
                QPQGroupSummary(groupId: groupId(), epoch: u64(), memberCount: UInt32.random(in: 0...1000, using: &self)) })
        case 16: return .members(epoch: u64(), (0..<count(L.maxMembers)).map { _ in QPQMember(deviceId: u64(), userId: u64(), user: userName()) })
        case 17: return .blobCreated(blobId: bytes(L.blobIdSize), expiresAt: u64())
        case 18: return .blobState(size: u64(), received: u64(), expiresAt: u64())
        case 19: return .blobData(data: bytes(upTo: 400))
        default: return .error(code: QPQErrorCode(rawValue: UInt16.random(in: 0...30, using: &self)), detail: u64(),
                               message: text(maxBytes: L.maxErrorMessage))
        }
    }

    /// A random valid file offer (the MLS application message of a file).
    mutating func fileOffer() -> QPQFileOffer {
        QPQFileOffer(blobId: bytes(QPQLimits.blobIdSize), key: bytes(QPQFileOffer.keySize),
                     size: UInt64.random(in: 0...QPQLimits.maxBlobSize, using: &self),
                     chunkSize: UInt32.random(in: QPQFileOffer.chunkSizes, using: &self), sha256: bytes(32),
                     name: text(maxBytes: QPQFileOffer.maxName))
    }

    mutating func frame() -> QPQFrame {
        switch Int.random(in: 0..<5, using: &self) {
        case 0, 1: return QPQFrame(requestId: UInt32.random(in: 1...UInt32.max, using: &self), message: .request(request()))
        case 2, 3: return QPQFrame(requestId: UInt32.random(in: 0...UInt32.max, using: &self), message: .response(response()))
        default: return QPQFrame(requestId: 0, message: .push(Bool.random(using: &self) ? .deliver(envelope()) : .revoked))
        }
    }
}
