/// Encodes and decodes qpq/1 frame bodies (docs/messaging.md §1–2). Sans-I/O: bytes in, values out.
/// ``QPQFrameSplitter`` cuts a byte stream into bodies.
public enum QPQCodec {
    typealias L = QPQLimits

    // MARK: - Encoding

    /// The frame for `frame`, length prefix included.
    public static func encode(_ frame: QPQFrame) throws(QPQEncodeError) -> [UInt8] {
        let body = try encodeBody(frame)
        let limit = frameLimit(frame.message)
        guard body.count <= limit else { throw .fieldTooLong(field: "frame", limit: limit, actual: body.count) }
        var out: [UInt8] = []
        out.reserveCapacity(4 + body.count)
        let n = UInt32(body.count)
        out += [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
        out += body
        return out
    }

    /// The largest body `message` may have: ``QPQLimits/maxLargeFrame`` for a `Commit` request and
    /// for everything the server sends, ``QPQLimits/maxFrame`` for other requests (§1, §7).
    public static func frameLimit(_ message: QPQMessage) -> Int {
        if case .request(let request) = message, request.type != QPQFrameSplitter.commitType { return L.maxFrame }
        return L.maxLargeFrame
    }

    /// The frame body (version, type, request id, fields) without the length prefix.
    public static func encodeBody(_ frame: QPQFrame) throws(QPQEncodeError) -> [UInt8] {
        var w = QPQWriter()
        w.u8(L.version)
        w.u8(frame.message.type)
        w.u32(frame.requestId)
        switch frame.message {
        case .request(let r): try encode(r, into: &w)
        case .response(let r): try encode(r, into: &w)
        case .push(let p): try encode(p, into: &w)
        }
        return w.bytes
    }

    static func encode(_ r: QPQRequest, into w: inout QPQWriter) throws(QPQEncodeError) {
        switch r {
        case .ping, .logout, .listDevices, .keyPackageCount, .subscribe, .listGroups:
            break
        case .registerStart(let user, let request):
            try w.userName(user)
            try w.fixed(request, L.registrationRequestSize, "request")
        case .registerFinish(let user, let record):
            try w.userName(user)
            try w.fixed(record, L.registrationRecordSize, "record")
        case .loginStart(let user, let ke1):
            try w.userName(user)
            try w.fixed(ke1, L.ke1Size, "ke1")
        case .loginFinish(let ke3, let deviceId, let deviceName, let identityKey, let signature):
            try w.fixed(ke3, L.ke3Size, "ke3")
            w.u64(deviceId)
            try w.string8(deviceName, max: L.maxDeviceName, "deviceName")
            try w.fixed(identityKey, L.identityKeySize, "identityKey")
            try w.fixed(signature, L.signatureSize, "signature")
        case .resume(let deviceId, let token):
            w.u64(deviceId)
            try w.fixed(token, L.tokenSize, "token")
        case .revokeDevice(let deviceId):
            w.u64(deviceId)
        case .uploadKeyPackages(let lastResort, let packages):
            w.bool(lastResort)
            try w.count16(packages.count, max: L.maxKeyPackagesPerUpload, "packages")
            for p in packages { try w.bytes(p, prefix: 2, max: L.maxKeyPackage, min: 1, "package") }
        case .fetchKeyPackages(let user), .lookupUser(let user):
            try w.userName(user)
        case .createGroup(let groupId, let tokenHash):
            try w.groupId(groupId)
            try w.fixed(tokenHash, L.tokenSize, "tokenHash")
        case .commit(let groupId, let epoch, let token, let nextTokenHash, let add, let remove, let commit, let welcomes):
            try w.groupId(groupId)
            w.u64(epoch)
            try w.fixed(token, L.tokenSize, "token")
            try w.fixed(nextTokenHash, L.tokenSize, "nextTokenHash")
            try w.count16(add.count, max: L.maxMembers, "add")
            for d in add { w.u64(d) }
            try w.count16(remove.count, max: L.maxMembers, "remove")
            for d in remove { w.u64(d) }
            try w.bytes(commit, prefix: 4, max: L.maxCommit, min: 1, "commit")
            try w.count16(welcomes.count, max: L.maxMembers, "welcomes")
            for x in welcomes {
                w.u64(x.deviceId)
                try w.bytes(x.welcome, prefix: 4, max: L.maxWelcome, min: 1, "welcome")
            }
        case .send(let groupId, let epoch, let token, let message):
            try w.groupId(groupId)
            w.u64(epoch)
            try w.fixed(token, L.tokenSize, "token")
            try w.bytes(message, prefix: 4, max: L.maxMessage, min: 1, "message")
        case .fetch(let limit):
            guard (1...UInt16(L.maxFetch)).contains(limit) else {
                throw .invalidField(field: "limit", reason: "must be 1-\(L.maxFetch)")
            }
            w.u16(limit)
        case .ack(let ids):
            try w.count16(ids.count, max: L.maxAck, "messageIds")
            for id in ids { w.u64(id) }
        case .groupMembers(let groupId):
            try w.groupId(groupId)
        case .setDisappearing(let groupId, let epoch, let token, let seconds):
            try w.groupId(groupId)
            w.u64(epoch)
            try w.fixed(token, L.tokenSize, "token")
            guard seconds <= L.maxDisappearSeconds else {
                throw .fieldTooLong(field: "seconds", limit: Int(L.maxDisappearSeconds), actual: Int(seconds))
            }
            w.u32(seconds)
        case .blobCreate(let groupId, let size):
            try w.groupId(groupId)
            guard size <= L.maxBlobSize else { throw .fieldTooLong(field: "size", limit: Int(L.maxBlobSize), actual: Int(clamping: size)) }
            w.u64(size)
        case .blobUpload(let blobId, let offset, let data):
            try w.fixed(blobId, L.blobIdSize, "blobId")
            w.u64(offset)
            try w.bytes(data, prefix: 4, max: L.maxBlobPiece, min: 1, "data")
        case .blobStatus(let blobId):
            try w.fixed(blobId, L.blobIdSize, "blobId")
        case .blobDownload(let blobId, let offset, let length):
            try w.fixed(blobId, L.blobIdSize, "blobId")
            w.u64(offset)
            guard (1...UInt32(L.maxBlobPiece)).contains(length) else {
                throw .invalidField(field: "length", reason: "must be 1-\(L.maxBlobPiece)")
            }
            w.u32(length)
        }
    }

    static func encode(_ r: QPQResponse, into w: inout QPQWriter) throws(QPQEncodeError) {
        switch r {
        case .ok:
            break
        case .pong(let t):
            w.u64(t)
        case .registerChallenge(let response):
            try w.fixed(response, L.registrationResponseSize, "response")
        case .loginChallenge(let ke2, let challenge):
            try w.fixed(ke2, L.ke2Size, "ke2")
            try w.fixed(challenge, L.challengeSize, "challenge")
        case .loggedIn(let userId, let deviceId, let token):
            w.u64(userId)
            w.u64(deviceId)
            try w.fixed(token, L.tokenSize, "token")
        case .resumed(let userId, let deviceId):
            w.u64(userId)
            w.u64(deviceId)
        case .devices(let devices):
            try w.count16(devices.count, max: L.maxDevices, "devices")
            for d in devices {
                w.u64(d.deviceId)
                try w.string8(d.name, max: L.maxDeviceName, "name")
                try w.fixed(d.identityKey, L.identityKeySize, "identityKey")
                w.u64(d.createdAt)
                w.bool(d.isCurrent)
            }
        case .keyPackagesStored(let n, let lastResort), .keyPackageCountIs(let n, let lastResort):
            w.u32(n)
            w.bool(lastResort)
        case .keyPackages(let list):
            try w.count16(list.count, max: L.maxDevices, "packages")
            for p in list {
                w.u64(p.deviceId)
                try w.bytes(p.keyPackage, prefix: 2, max: L.maxKeyPackage, min: 1, "package")
            }
        case .user(let userId, let user, let devices):
            w.u64(userId)
            try w.userName(user)
            try w.count16(devices.count, max: L.maxDevices, "devices")
            for d in devices {
                w.u64(d.deviceId)
                try w.fixed(d.identityKey, L.identityKeySize, "identityKey")
            }
        case .committed(let epoch, let messageId):
            w.u64(epoch)
            w.u64(messageId)
        case .sent(let messageId):
            w.u64(messageId)
        case .messages(let envelopes, let more):
            try w.count16(envelopes.count, max: L.maxFetch, "envelopes")
            for e in envelopes { try encode(e, into: &w) }
            w.bool(more)
        case .acked(let n):
            w.u16(n)
        case .groups(let groups):
            try w.count16(groups.count, max: L.maxMembers, "groups")
            for g in groups {
                try w.groupId(g.groupId)
                w.u64(g.epoch)
                w.u32(g.memberCount)
            }
        case .members(let epoch, let members):
            w.u64(epoch)
            try w.count16(members.count, max: L.maxMembers, "members")
            for m in members {
                w.u64(m.deviceId)
                w.u64(m.userId)
                try w.userName(m.user)
            }
        case .blobCreated(let blobId, let expiresAt):
            try w.fixed(blobId, L.blobIdSize, "blobId")
            w.u64(expiresAt)
        case .blobState(let size, let received, let expiresAt):
            w.u64(size)
            w.u64(received)
            w.u64(expiresAt)
        case .blobData(let data):
            try w.bytes(data, prefix: 4, max: L.maxBlobPiece, min: 0, "data")
        case .error(let code, let detail, let message):
            w.u16(code.rawValue)
            w.u64(detail)
            // Error text is advisory: cut it (on a character boundary) rather than fail the answer.
            var text = message
            while text.utf8.count > L.maxErrorMessage { text.removeLast() }
            try w.string8(text, max: L.maxErrorMessage, "message")
        }
    }

    static func encode(_ p: QPQPush, into w: inout QPQWriter) throws(QPQEncodeError) {
        switch p {
        case .deliver(let e): try encode(e, into: &w)
        case .revoked: break
        }
    }

    static func encode(_ e: QPQEnvelope, into w: inout QPQWriter) throws(QPQEncodeError) {
        w.u64(e.messageId)
        try w.groupId(e.groupId)
        w.u64(e.epoch)
        w.u8(e.kind.rawValue)
        w.u64(e.serverTime)
        w.u64(e.expiresAt)
        try w.bytes(e.payload, prefix: 4, max: L.maxEnvelopePayload, min: 1, "payload")
    }

    // MARK: - Decoding

    /// Decodes one frame body (what ``QPQFrameSplitter`` returns).
    public static func decodeBody(_ body: [UInt8]) throws(QPQDecodeError) -> QPQFrame {
        guard !body.isEmpty else { throw .emptyFrame }
        guard body.count <= L.maxLargeFrame else { throw .tooLarge(length: body.count) }
        var r = QPQReader(body)
        let version = try r.u8("version")
        guard version == L.version else { throw .unsupportedVersion(version) }
        let type = try r.u8("type")
        if body.count > L.maxFrame, (0x01...0x3F).contains(type), type != QPQFrameSplitter.commitType { throw .tooLarge(length: body.count) }
        let requestId = try r.u32("requestId")
        let message: QPQMessage
        switch type {
        case 0x01...0x3F: message = .request(try decodeRequest(type, &r))
        case 0x80...0xBF, 0xFF: message = .response(try decodeResponse(type, &r))
        case 0xC0...0xCF: message = .push(try decodePush(type, &r))
        default: throw .unknownType(type)
        }
        try r.finish("type 0x\(String(type, radix: 16))")
        switch message {
        case .request where requestId == 0: throw .malformed("requestId: 0 is reserved for pushes")
        case .push where requestId != 0: throw .malformed("requestId: a push has request id 0")
        default: return QPQFrame(requestId: requestId, message: message)
        }
    }

    static func decodeRequest(_ type: UInt8, _ r: inout QPQReader) throws(QPQDecodeError) -> QPQRequest {
        switch type {
        case 0x01: return .ping
        case 0x02: return .registerStart(user: try r.userName(), request: try r.fixed(L.registrationRequestSize, "request"))
        case 0x03: return .registerFinish(user: try r.userName(), record: try r.fixed(L.registrationRecordSize, "record"))
        case 0x04: return .loginStart(user: try r.userName(), ke1: try r.fixed(L.ke1Size, "ke1"))
        case 0x05:
            return .loginFinish(
                ke3: try r.fixed(L.ke3Size, "ke3"), deviceId: try r.u64("deviceId"),
                deviceName: try r.string8(max: L.maxDeviceName, "deviceName"),
                identityKey: try r.fixed(L.identityKeySize, "identityKey"), signature: try r.fixed(L.signatureSize, "signature"))
        case 0x06: return .resume(deviceId: try r.u64("deviceId"), token: try r.fixed(L.tokenSize, "token"))
        case 0x07: return .logout
        case 0x08: return .listDevices
        case 0x09: return .revokeDevice(deviceId: try r.u64("deviceId"))
        case 0x0A:
            let lastResort = try r.bool("lastResort")
            let n = try r.count16(max: L.maxKeyPackagesPerUpload, "packages")
            var packages: [[UInt8]] = []
            for _ in 0..<n { packages.append(try r.bytes(prefix: 2, max: L.maxKeyPackage, min: 1, "package")) }
            return .uploadKeyPackages(lastResort: lastResort, packages: packages)
        case 0x0B: return .fetchKeyPackages(user: try r.userName())
        case 0x0C: return .keyPackageCount
        case 0x0D: return .lookupUser(user: try r.userName())
        case 0x0E: return .createGroup(groupId: try r.groupId(), tokenHash: try r.fixed(L.tokenSize, "tokenHash"))
        case 0x0F:
            let groupId = try r.groupId()
            let epoch = try r.u64("epoch")
            let token = try r.fixed(L.tokenSize, "token")
            let next = try r.fixed(L.tokenSize, "nextTokenHash")
            var add: [UInt64] = [], remove: [UInt64] = []
            for _ in 0..<(try r.count16(max: L.maxMembers, "add")) { add.append(try r.u64("add")) }
            for _ in 0..<(try r.count16(max: L.maxMembers, "remove")) { remove.append(try r.u64("remove")) }
            let commit = try r.bytes(prefix: 4, max: L.maxCommit, min: 1, "commit")
            var welcomes: [QPQWelcome] = []
            for _ in 0..<(try r.count16(max: L.maxMembers, "welcomes")) {
                welcomes.append(QPQWelcome(deviceId: try r.u64("welcome deviceId"),
                                           welcome: try r.bytes(prefix: 4, max: L.maxWelcome, min: 1, "welcome")))
            }
            return .commit(groupId: groupId, epoch: epoch, token: token, nextTokenHash: next, add: add, remove: remove,
                           commit: commit, welcomes: welcomes)
        case 0x10:
            return .send(groupId: try r.groupId(), epoch: try r.u64("epoch"), token: try r.fixed(L.tokenSize, "token"),
                         message: try r.bytes(prefix: 4, max: L.maxMessage, min: 1, "message"))
        case 0x11:
            let limit = try r.u16("limit")
            guard (1...UInt16(L.maxFetch)).contains(limit) else { throw .malformed("limit: \(limit) is not 1-\(L.maxFetch)") }
            return .fetch(limit: limit)
        case 0x12:
            var ids: [UInt64] = []
            for _ in 0..<(try r.count16(max: L.maxAck, "messageIds")) { ids.append(try r.u64("messageId")) }
            return .ack(messageIds: ids)
        case 0x13: return .subscribe
        case 0x14: return .listGroups
        case 0x15: return .groupMembers(groupId: try r.groupId())
        case 0x16:
            let groupId = try r.groupId()
            let epoch = try r.u64("epoch")
            let token = try r.fixed(L.tokenSize, "token")
            let seconds = try r.u32("seconds")
            guard seconds <= L.maxDisappearSeconds else { throw .malformed("seconds: \(seconds) is over \(L.maxDisappearSeconds)") }
            return .setDisappearing(groupId: groupId, epoch: epoch, token: token, seconds: seconds)
        case 0x17:
            let groupId = try r.groupId()
            let size = try r.u64("size")
            guard size <= L.maxBlobSize else { throw .malformed("size: \(size) is over \(L.maxBlobSize)") }
            return .blobCreate(groupId: groupId, size: size)
        case 0x18:
            return .blobUpload(blobId: try r.fixed(L.blobIdSize, "blobId"), offset: try r.u64("offset"),
                               data: try r.bytes(prefix: 4, max: L.maxBlobPiece, min: 1, "data"))
        case 0x19: return .blobStatus(blobId: try r.fixed(L.blobIdSize, "blobId"))
        case 0x1A:
            let blobId = try r.fixed(L.blobIdSize, "blobId")
            let offset = try r.u64("offset")
            let length = try r.u32("length")
            guard (1...UInt32(L.maxBlobPiece)).contains(length) else { throw .malformed("length: \(length) is not 1-\(L.maxBlobPiece)") }
            return .blobDownload(blobId: blobId, offset: offset, length: length)
        default: throw .unknownType(type)
        }
    }

    static func decodeResponse(_ type: UInt8, _ r: inout QPQReader) throws(QPQDecodeError) -> QPQResponse {
        switch type {
        case 0x80: return .ok
        case 0x81: return .pong(serverTime: try r.u64("serverTime"))
        case 0x82: return .registerChallenge(response: try r.fixed(L.registrationResponseSize, "response"))
        case 0x83: return .loginChallenge(ke2: try r.fixed(L.ke2Size, "ke2"), challenge: try r.fixed(L.challengeSize, "challenge"))
        case 0x84:
            return .loggedIn(userId: try r.u64("userId"), deviceId: try r.u64("deviceId"), token: try r.fixed(L.tokenSize, "token"))
        case 0x85: return .resumed(userId: try r.u64("userId"), deviceId: try r.u64("deviceId"))
        case 0x86:
            var devices: [QPQDevice] = []
            for _ in 0..<(try r.count16(max: L.maxDevices, "devices")) {
                devices.append(QPQDevice(
                    deviceId: try r.u64("deviceId"), name: try r.string8(max: L.maxDeviceName, "name"),
                    identityKey: try r.fixed(L.identityKeySize, "identityKey"), createdAt: try r.u64("createdAt"),
                    isCurrent: try r.bool("current")))
            }
            return .devices(devices)
        case 0x87: return .keyPackagesStored(oneTime: try r.u32("oneTime"), hasLastResort: try r.bool("hasLastResort"))
        case 0x88:
            var list: [QPQDeviceKeyPackage] = []
            for _ in 0..<(try r.count16(max: L.maxDevices, "packages")) {
                list.append(QPQDeviceKeyPackage(deviceId: try r.u64("deviceId"),
                                                keyPackage: try r.bytes(prefix: 2, max: L.maxKeyPackage, min: 1, "package")))
            }
            return .keyPackages(list)
        case 0x89: return .keyPackageCountIs(oneTime: try r.u32("oneTime"), hasLastResort: try r.bool("hasLastResort"))
        case 0x8A:
            let userId = try r.u64("userId")
            let user = try r.userName()
            var devices: [QPQUserDevice] = []
            for _ in 0..<(try r.count16(max: L.maxDevices, "devices")) {
                devices.append(QPQUserDevice(deviceId: try r.u64("deviceId"), identityKey: try r.fixed(L.identityKeySize, "identityKey")))
            }
            return .user(userId: userId, user: user, devices: devices)
        case 0x8B: return .committed(epoch: try r.u64("epoch"), messageId: try r.u64("messageId"))
        case 0x8C: return .sent(messageId: try r.u64("messageId"))
        case 0x8D:
            var envelopes: [QPQEnvelope] = []
            for _ in 0..<(try r.count16(max: L.maxFetch, "envelopes")) { envelopes.append(try decodeEnvelope(&r)) }
            return .messages(envelopes, more: try r.bool("more"))
        case 0x8E: return .acked(deleted: try r.u16("deleted"))
        case 0x8F:
            var groups: [QPQGroupSummary] = []
            for _ in 0..<(try r.count16(max: L.maxMembers, "groups")) {
                groups.append(QPQGroupSummary(groupId: try r.groupId(), epoch: try r.u64("epoch"), memberCount: try r.u32("members")))
            }
            return .groups(groups)
        case 0x90:
            let epoch = try r.u64("epoch")
            var members: [QPQMember] = []
            for _ in 0..<(try r.count16(max: L.maxMembers, "members")) {
                members.append(QPQMember(deviceId: try r.u64("deviceId"), userId: try r.u64("userId"), user: try r.userName()))
            }
            return .members(epoch: epoch, members)
        case 0x91: return .blobCreated(blobId: try r.fixed(L.blobIdSize, "blobId"), expiresAt: try r.u64("expiresAt"))
        case 0x92: return .blobState(size: try r.u64("size"), received: try r.u64("received"), expiresAt: try r.u64("expiresAt"))
        case 0x93: return .blobData(data: try r.bytes(prefix: 4, max: L.maxBlobPiece, min: 0, "data"))
        case 0xFF:
            return .error(code: QPQErrorCode(rawValue: try r.u16("code")), detail: try r.u64("detail"),
                          message: try r.string8(max: L.maxErrorMessage, "message"))
        default: throw .unknownType(type)
        }
    }

    static func decodePush(_ type: UInt8, _ r: inout QPQReader) throws(QPQDecodeError) -> QPQPush {
        switch type {
        case 0xC0: return .deliver(try decodeEnvelope(&r))
        case 0xC1: return .revoked
        default: throw .unknownType(type)
        }
    }

    static func decodeEnvelope(_ r: inout QPQReader) throws(QPQDecodeError) -> QPQEnvelope {
        let messageId = try r.u64("messageId")
        let groupId = try r.groupId()
        let epoch = try r.u64("epoch")
        let rawKind = try r.u8("kind")
        guard let kind = QPQEnvelopeKind(rawValue: rawKind) else { throw .malformed("kind: \(rawKind) is not 1, 2 or 3") }
        return QPQEnvelope(messageId: messageId, groupId: groupId, epoch: epoch, kind: kind, serverTime: try r.u64("serverTime"),
                           expiresAt: try r.u64("expiresAt"),
                           payload: try r.bytes(prefix: 4, max: L.maxEnvelopePayload, min: 1, "payload"))
    }
}
