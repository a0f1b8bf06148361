import Foundation
import QMLS
import QNSPCrypto
import QPQProtocol

/// The qpq client: MLS groups (X-Wing + ML-DSA-65 suite) over a qpq/1 transport, with the state
/// kept in a ``QPQClientState``. The device identity key is also its MLS signing key, so members
/// check a KeyPackage against the key `LookupUser` returns. Not thread-safe: one caller at a time.
package final class QPQMessenger {
    package static let suite = CipherSuite.xwingAes256Sha384MLDSA65
    package static let keyPackagesPerUpload = 10

    package internal(set) var state: QPQClientState
    let transport: any QPQTransport
    /// Carries what the group token authorizes (`Send`, `Commit`, `SetDisappearing`): a connection
    /// that never logs in, so the server cannot tie a send to this device by its connection
    /// (sealed sender, docs/messaging.md §8). nil: `transport` carries them too.
    let sealed: (any QPQTransport)?
    private let provider: CipherSuiteProvider
    /// Set while ``commitPendingLeaves()`` runs (its retries call ``receive()``).
    private var committingLeaves = false

    package init(state: QPQClientState, transport: any QPQTransport, sealed: (any QPQTransport)? = nil) throws(QPQClientError) {
        self.state = state
        self.transport = transport
        self.sealed = sealed
        do { provider = try CipherSuiteProvider(Self.suite) } catch { throw .crypto("MLS suite: \(error)") }
    }

    /// Whether `request` goes on the connection that never logs in (docs/messaging.md §8): what
    /// the group token authorizes (`Send`, `Commit`, `SetDisappearing`), except a `Commit` frame
    /// over 2 MiB (welcomes of a large group, §7.1), which the server refuses before login: that
    /// one goes on the logged-in connection, the one case where the server can tie a commit to a device.
    package static func goesSealed(_ request: QPQRequest) -> Bool {
        switch request {
        case .send, .setDisappearing: return true
        case .commit:
            guard let body = try? QPQCodec.encodeBody(QPQFrame(requestId: 1, message: .request(request))) else { return false }
            return body.count <= QPQLimits.maxFrame
        default: return false
        }
    }

    /// The connection for `request` (``goesSealed(_:)``).
    private func uploader(for request: QPQRequest) -> any QPQTransport {
        guard let sealed, Self.goesSealed(request) else { return transport }
        return sealed
    }

    private func signingKey() throws(QPQClientError) -> SignaturePrivateKey {
        do { return try provider.signaturePrivateKey(Array(state.identitySeed)) } catch { throw .crypto("identity key: \(error)") }
    }

    private func identity() throws(QPQClientError) -> SignatureScheme.PrivateKey {
        do { return try SignatureScheme.PrivateKey(seed: Array(state.identitySeed)) } catch { throw .crypto("identity key: \(error)") }
    }

    // MARK: - Account

    /// Logs in (a new device when the state has none), then makes sure KeyPackages are on the server.
    package func login(user: String, password: [UInt8], deviceName: String,
                       configuration: QOPAQUEConfigurationChoice = .qpqDefault) async throws(QPQClientError) {
        if state.identitySeed.isEmpty {
            do { state.identitySeed = Data(try SignatureScheme.PrivateKey.generate().seed) } catch { throw .crypto("\(error)") }
        }
        let credentials = try await QPQAccount.login(user: user, password: password, deviceId: state.user == user ? state.deviceId : 0,
                                                     deviceName: deviceName, identity: try identity(),
                                                     configuration: configuration.configuration, over: transport)
        if state.user != user { state.bundles = [] }
        state.user = user
        state.userId = credentials.userId
        state.deviceId = credentials.deviceId
        state.token = Data(credentials.token)
        try await replenishKeyPackages()
    }

    /// Logs this connection in with the stored session token.
    package func resume() async throws(QPQClientError) {
        guard state.deviceId != 0 else { throw .unexpectedResponse("not logged in: run 'qpq login' first") }
        let answer = try await transport.expect(.resume(deviceId: state.deviceId, token: Array(state.token)))
        guard case .resumed = answer else { throw .unexpectedResponse("\(answer) to Resume") }
    }

    private func credential() -> Credential { .basic(identity: Array(state.user.utf8)) }

    /// Uploads one-time KeyPackages when fewer than half are left, and a last-resort one if missing.
    package func replenishKeyPackages() async throws(QPQClientError) {
        let answer = try await transport.expect(.keyPackageCount)
        guard case .keyPackageCountIs(let oneTime, let hasLastResort) = answer else { throw .unexpectedResponse("\(answer)") }
        let key = try signingKey()
        func make(_ n: Int) throws(QPQClientError) -> [[UInt8]] {
            var out: [[UInt8]] = []
            for _ in 0..<n {
                do {
                    let b = try KeyPackageBundle.create(suite: Self.suite, credential: credential(), signingKey: key)
                    state.bundles.append(QPQClientState.Bundle(keyPackage: Data(b.keyPackage.mlsEncoded), initPrivateKey: Data(b.initPrivateKey),
                                                               encryptionPrivateKey: Data(b.encryptionPrivateKey)))
                    out.append(b.keyPackage.mlsEncoded)
                } catch {
                    throw .crypto("KeyPackage: \(error)")
                }
            }
            return out
        }
        if oneTime < UInt32(Self.keyPackagesPerUpload / 2) {
            _ = try await transport.expect(.uploadKeyPackages(lastResort: false, packages: try make(Self.keyPackagesPerUpload - Int(oneTime))))
        }
        if !hasLastResort {
            _ = try await transport.expect(.uploadKeyPackages(lastResort: true, packages: try make(1)))
        }
    }

    // MARK: - Groups

    func group(_ name: String) throws(QPQClientError) -> MLSGroup {
        guard let stored = state.groups[name] else { throw .unexpectedResponse("no group \(name) on this device") }
        do { return try MLSGroup(serialized: Array(stored.state)) } catch { throw .crypto("group \(name): \(error)") }
    }

    func store(_ group: MLSGroup, name: String) {
        state.groups[name] = QPQClientState.Group(groupId: Data(group.groupID), state: Data(group.serialized()))
    }

    static func token(_ group: MLSGroup) -> [UInt8] {
        group.exportSecret(label: QPQGroupToken.exporterLabel, context: [], length: QPQGroupToken.length)
    }

    /// Creates a group whose id is `name` (UTF-8) with this device as its only member.
    package func createGroup(_ name: String) async throws(QPQClientError) {
        let id = Array(name.utf8)
        guard (1...QPQLimits.maxGroupId).contains(id.count) else { throw .unexpectedResponse("a group name has 1-\(QPQLimits.maxGroupId) bytes") }
        let group: MLSGroup
        do { group = try MLSGroup.create(suite: Self.suite, groupID: id, credential: credential(), signingKey: try signingKey()) } catch {
            throw .crypto("group: \(error)")
        }
        _ = try await transport.expect(.createGroup(groupId: id, tokenHash: KeyDerivation.sha256(Self.token(group))))
        store(group, name: name)
    }

    /// Adds every device of `user`: their KeyPackages are checked against the identity keys the
    /// server lists for them (the credential's signature key must be the device key).
    package func add(user: String, to name: String) async throws(QPQClientError) {
        let lookup = try await transport.expect(.lookupUser(user: user))
        guard case .user(_, _, let devices) = lookup else { throw .unexpectedResponse("\(lookup)") }
        let fetched = try await transport.expect(.fetchKeyPackages(user: user))
        guard case .keyPackages(let packages) = fetched else { throw .unexpectedResponse("\(fetched)") }
        var adds: [KeyPackage] = []
        var deviceIds: [UInt64] = []
        for p in packages {
            guard let device = devices.first(where: { $0.deviceId == p.deviceId }) else { continue }
            let kp: KeyPackage
            do { kp = try KeyPackage(mlsDecoding: p.keyPackage) } catch { throw .crypto("KeyPackage of \(user): \(error)") }
            guard kp.cipherSuite == Self.suite, kp.verifySignature(provider: provider), kp.leafNode.signatureKey == device.identityKey,
                  kp.leafNode.credential == .basic(identity: Array(user.utf8)) else {
                throw .crypto("the KeyPackage of \(user)'s device \(p.deviceId) does not match its identity key")
            }
            adds.append(kp)
            deviceIds.append(p.deviceId)
        }
        guard !adds.isEmpty else { throw .unexpectedResponse("\(user) has no device to add") }
        try await commitWithRetry(name) { group throws(QPQClientError) -> (CommitOptions, [UInt64], [UInt64]) in
            var options = CommitOptions()
            options.adds = adds
            return (options, deviceIds, [])
        }
    }

    /// Removes every device of `user` from the group (the server stops queueing for them; the new
    /// epoch's keys are not theirs).
    package func remove(user: String, from name: String) async throws(QPQClientError) {
        let lookup = try await transport.expect(.lookupUser(user: user))
        guard case .user(_, _, let devices) = lookup else { throw .unexpectedResponse("\(lookup)") }
        try await commitWithRetry(name) { group throws(QPQClientError) -> (CommitOptions, [UInt64], [UInt64]) in
            var leaves: [LeafIndex] = []
            var ids: [UInt64] = []
            for member in group.members {
                guard member.leaf.credential == .basic(identity: Array(user.utf8)) else { continue }
                leaves.append(member.index)
                if let d = devices.first(where: { $0.identityKey == member.leaf.signatureKey }) { ids.append(d.deviceId) }
            }
            guard !leaves.isEmpty else { throw .unexpectedResponse("\(user) is not in \(name)") }
            guard !leaves.contains(group.ownLeaf) else { throw .unexpectedResponse("a member cannot commit its own removal") }
            var options = CommitOptions()
            options.removes = leaves
            return (options, [], ids)
        }
    }

    /// Leaves a group the RFC 9420 way: a Remove proposal for this member's own leaf (§12.1.3), sent
    /// to the group; the next member that processes it commits the removal (a member cannot commit
    /// its own removal). The group's local state is deleted at once: this device cannot read the group
    /// from now on, even before the removal is committed.
    package func leave(_ name: String) async throws(QPQClientError) {
        for attempt in 0..<3 {
            var group = try self.group(name)
            let proposal: [UInt8]
            do { proposal = try group.propose(.remove(group.ownLeaf)) } catch { throw .crypto("leave: \(error)") }
            let request = QPQRequest.send(groupId: group.groupID, epoch: group.epoch, token: Self.token(group), message: proposal)
            let answer = try await uploader(for: request).call(request)
            switch answer {
            case .sent(let id):
                state.markSeen(id)
                state.groups[name] = nil
                state.leaves.removeAll { $0.group == name }
                state.messages.append(QPQClientState.Message(messageId: id, group: name, sender: state.user, text: Self.leftText,
                                                             serverTime: QPQLocalStore.wallClockMilliseconds(), own: true))
                return
            case .error(.epochMoved, _, _) where attempt < 2:
                _ = try await receive()
            case .error(let code, let detail, let message):
                throw .server(code: code, detail: detail, message: message)
            default:
                throw .unexpectedResponse("\(answer) to Send")
            }
        }
    }

    /// How a leave shows in the history.
    package static let leftText = "[left the group]"

    /// Commits the removal of members that asked to leave (their self-Remove proposals), for every
    /// group where they are still in the tree. Several members may race: the losers process the
    /// winning commit and find nothing left to do.
    package func commitPendingLeaves() async throws(QPQClientError) {
        guard !committingLeaves else { return }
        committingLeaves = true
        defer { committingLeaves = false }
        for name in Set(state.leaves.map(\.group)).sorted() {
            let keys = Set(state.leaves.filter { $0.group == name }.map { Array($0.signatureKey) })
            guard let group = try? self.group(name) else { state.leaves.removeAll { $0.group == name }; continue }
            // The server's member list is by device: find the leavers' devices by their identity keys.
            var deviceIds: [UInt64] = []
            for member in group.members where keys.contains(member.leaf.signatureKey) {
                guard case .basic(let identity) = member.leaf.credential else { continue }
                let answer = try await transport.expect(.lookupUser(user: String(decoding: identity, as: UTF8.self)))
                guard case .user(_, _, let devices) = answer else { throw .unexpectedResponse("\(answer)") }
                deviceIds += devices.filter { $0.identityKey == member.leaf.signatureKey }.map(\.deviceId)
            }
            try await commitWithRetry(name) { group throws(QPQClientError) -> (CommitOptions, [UInt64], [UInt64])? in
                let leaves = group.members.filter { keys.contains($0.leaf.signatureKey) && $0.index != group.ownLeaf }.map(\.index)
                guard !leaves.isEmpty else { return nil }
                var options = CommitOptions()
                options.removes = leaves
                return (options, [], deviceIds)
            }
            state.leaves.removeAll { $0.group == name }
        }
    }

    /// Commits, and on `epochMoved` processes the queue and tries again (a few times).
    private func commitWithRetry(_ name: String,
                                 _ build: (MLSGroup) throws(QPQClientError) -> (CommitOptions, [UInt64], [UInt64])?) async throws(QPQClientError) {
        for attempt in 0..<5 {
            var group = try self.group(name)
            guard let (options, add, remove) = try build(group) else { return }  // nothing (left) to commit
            let output: CommitOutput
            do { output = try group.commit(options) } catch { throw .crypto("commit: \(error)") }
            var next = group
            do { try next.mergePendingCommit() } catch { throw .crypto("commit: \(error)") }
            let welcomes = output.welcome.map { w in add.map { QPQWelcome(deviceId: $0, welcome: w) } } ?? []
            let request = QPQRequest.commit(groupId: group.groupID, epoch: group.epoch, token: Self.token(group),
                                            nextTokenHash: KeyDerivation.sha256(Self.token(next)), add: add, remove: remove,
                                            commit: output.commit, welcomes: welcomes)
            let answer = try await uploader(for: request).call(request)
            switch answer {
            case .committed(_, let messageId):
                store(next, name: name)
                state.markSeen(messageId)
                return
            case .error(.epochMoved, _, _) where attempt < 4:
                _ = try await receive()
            case .error(let code, let detail, let message):
                throw .server(code: code, detail: detail, message: message)
            default:
                throw .unexpectedResponse("\(answer) to Commit")
            }
        }
    }

    /// Encrypts `text` for the group and hands it to the server; the message is kept in the local
    /// history as this device's own.
    package func send(_ text: String, to name: String) async throws(QPQClientError) {
        let id = try await sendData(Array(text.utf8), to: name)
        state.messages.append(QPQClientState.Message(messageId: id, group: name, sender: state.user, text: text,
                                                     serverTime: QPQLocalStore.wallClockMilliseconds(), own: true))
    }

    /// Encrypts application data for the group and hands it to the server; returns its message id.
    func sendData(_ data: [UInt8], to name: String) async throws(QPQClientError) -> UInt64 {
        for attempt in 0..<3 {
            var group = try self.group(name)
            let ciphertext: [UInt8]
            do { ciphertext = try group.encrypt(data) } catch { throw .crypto("encrypt: \(error)") }
            let request = QPQRequest.send(groupId: group.groupID, epoch: group.epoch, token: Self.token(group), message: ciphertext)
            let answer = try await uploader(for: request).call(request)
            switch answer {
            case .sent(let id):
                store(group, name: name)  // the sender ratchet moved
                state.markSeen(id)
                return id
            case .error(.epochMoved, _, _) where attempt < 2:
                _ = try await receive()
            case .error(let code, let detail, let message):
                throw .server(code: code, detail: detail, message: message)
            default:
                throw .unexpectedResponse("\(answer) to Send")
            }
        }
        throw .unexpectedResponse("the group kept moving while sending")
    }

    // MARK: - Receiving

    /// Fetches the queue, processes it in order (welcomes, commits, messages), acknowledges it, and
    /// returns the new messages. Duplicates (at-least-once delivery) are dropped by message id.
    package func receive() async throws(QPQClientError) -> [QPQClientState.Message] {
        var received: [QPQClientState.Message] = []
        while true {
            let answer = try await transport.expect(.fetch(limit: 100))
            guard case .messages(let envelopes, let more) = answer else { throw .unexpectedResponse("\(answer) to Fetch") }
            if envelopes.isEmpty { break }
            for e in envelopes { if let m = process(e) { received.append(m) } }
            _ = try await transport.expect(.ack(messageIds: envelopes.map(\.messageId)))
            if !more { break }
        }
        try await commitPendingLeaves()
        try await replenishKeyPackages()
        return received
    }

    /// Processes one envelope (also what a push delivers). Returns a message for application data.
    package func process(_ e: QPQEnvelope) -> QPQClientState.Message? {
        guard !state.seen.contains(e.messageId) else {
            // Our own message coming back: it tells us when it disappears.
            if e.expiresAt != 0, let i = state.messages.lastIndex(where: { $0.messageId == e.messageId && $0.own == true }) {
                state.messages[i].expiresAt = e.expiresAt
            }
            return nil
        }
        state.markSeen(e.messageId)
        let name = String(decoding: e.groupId, as: UTF8.self)
        switch e.kind {
        case .welcome:
            let key: SignaturePrivateKey
            do { key = try signingKey() } catch { return nil }
            for (i, b) in state.bundles.enumerated() {
                guard let kp = try? KeyPackage(mlsDecoding: Array(b.keyPackage)) else { continue }
                let bundle = KeyPackageBundle(keyPackage: kp, initPrivateKey: Array(b.initPrivateKey),
                                              encryptionPrivateKey: Array(b.encryptionPrivateKey), signingKey: key)
                if let group = try? MLSGroup.join(welcome: e.payload, keyPackage: bundle) {
                    store(group, name: name)
                    state.bundles.remove(at: i)
                    return nil
                }
            }
            return nil
        case .commit, .application:
            guard var group = try? self.group(name) else { return nil }
            guard let processed = try? group.process(e.payload) else { return nil }
            store(group, name: name)
            if case .proposal(let p) = processed, case .remove(let leaf) = p.proposal, case .member(let from) = p.sender, from == leaf,
               let member = group.members.first(where: { $0.index == leaf }) {
                // A member asks to leave: remember it, so that this device commits the removal.
                state.leaves.append(QPQClientState.Leave(group: name, signatureKey: Data(member.leaf.signatureKey)))
                let who: String
                if case .basic(let identity) = member.leaf.credential { who = String(decoding: identity, as: UTF8.self) } else { who = "?" }
                let message = QPQClientState.Message(messageId: e.messageId, group: name, sender: who, text: Self.leftText,
                                                     serverTime: e.serverTime, expiresAt: e.expiresAt)
                state.messages.append(message)
                return message
            }
            guard case .application(let app) = processed else { return nil }
            let sender = group.members.first(where: { $0.index == app.sender }).map { member -> String in
                if case .basic(let identity) = member.leaf.credential { return String(decoding: identity, as: UTF8.self) }
                return "?"
            } ?? "?"
            var message = QPQClientState.Message(messageId: e.messageId, group: name, sender: sender,
                                                 text: String(decoding: app.data, as: UTF8.self), serverTime: e.serverTime,
                                                 expiresAt: e.expiresAt)
            if QPQFileOffer.isOffer(app.data) {
                guard let offer = try? QPQFileOffer(decoding: app.data) else {
                    message.text = "[a file message this client cannot read]"
                    state.messages.append(message)
                    return message
                }
                message.text = "[file] \(offer.name) (\(offer.size) bytes)"
                message.file = QPQClientState.FileInfo(name: offer.name, size: offer.size, savedAs: nil)
                state.downloads.append(QPQClientState.Download(messageId: e.messageId, group: name, sender: sender, offer: Data(app.data)))
            }
            state.messages.append(message)
            return message
        }
    }

    /// Sets the group's disappearing-message timer on the server (0: off). Messages sent afterwards
    /// are deleted by the server and by every member's client when it runs out.
    package func setDisappearing(_ name: String, seconds: UInt32) async throws(QPQClientError) {
        let group = try self.group(name)
        let request = QPQRequest.setDisappearing(groupId: group.groupID, epoch: group.epoch, token: Self.token(group), seconds: seconds)
        _ = try await uploader(for: request).expect(request)
    }

    /// The user names of a group's members (from the MLS tree).
    package func members(of name: String) throws(QPQClientError) -> [String] {
        try group(name).members.map { member in
            if case .basic(let identity) = member.leaf.credential { return String(decoding: identity, as: UTF8.self) }
            return "?"
        }
    }

    /// The safety number of this account and `user`, from the identity keys the server lists.
    package func safetyNumber(with user: String) async throws(QPQClientError) -> String {
        func keys(_ name: String) async throws(QPQClientError) -> [[UInt8]] {
            let answer = try await transport.expect(.lookupUser(user: name))
            guard case .user(_, _, let devices) = answer else { throw .unexpectedResponse("\(answer)") }
            return devices.sorted { $0.deviceId < $1.deviceId }.map(\.identityKey)
        }
        return QPQSafetyNumber.compute((state.user, try await keys(state.user)), (user, try await keys(user)))
    }

    package func epoch(of name: String) throws(QPQClientError) -> UInt64 { try group(name).epoch }
}
