import Foundation
import GRDB
import QNSPCrypto
import QOPAQUE
import QPQClient
import QPQProtocol
import QPQServer
import Testing

@Suite("qpqd core: accounts, devices, KeyPackages, delivery (in process; SQLite, and PostgreSQL where marked by store)", .serialized,
       .sharedPostgres)
struct ServerCoreTests {
    @Test("register and log in; wrong password and unknown user get the same error; the database holds only the OPAQUE record")
    func registerLogin() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let context = try makeServerContext(dir: dir)
        let alice = try await registerAndLogin("alice", password: "hunter2 is not it", context: context)
        #expect(alice.credentials.deviceId > 0)
        #expect(alice.credentials.token.count == 32)

        // A second registration of the name is refused.
        let again = InProcessTransport(context: context)
        let taken = await #expect(throws: QPQClientError.self) {
            try await QPQAccount.register(user: "alice", password: Array("x".utf8), configuration: testOPAQUE, over: again)
        }
        #expect(taken?.serverCode == .userExists)

        // Wrong password and unknown user: the same server error, code and message.
        func failedLogin(_ user: String, _ password: String) async throws -> QPQResponse? {
            let t = InProcessTransport(context: context)
            _ = try? await QPQAccount.login(user: user, password: Array(password.utf8), deviceId: 0, deviceName: "x",
                                            identity: try SignatureScheme.PrivateKey.generate(), configuration: testOPAQUE, over: t)
            return await t.lastOutput?.response
        }
        let wrong = try await failedLogin("alice", "wrong")
        let unknown = try await failedLogin("bob", "whatever")
        guard case .error(let c1, _, let m1)? = wrong, case .error(let c2, _, let m2)? = unknown else {
            Issue.record("expected errors, got \(String(describing: wrong)) / \(String(describing: unknown))")
            return
        }
        #expect(c1 == .authenticationFailed && c2 == .authenticationFailed)
        #expect(m1 == m2)

        // The database: no password, no hash of it; the user row is the 192-byte record.
        let db = try DatabaseQueue(path: dir.path + "/qpqd.sqlite")
        let record = try await db.read { db in try Data.fetchOne(db, sql: "SELECT record FROM users WHERE name = 'alice'") }
        #expect(record?.count == 192)
        let raw = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/qpqd.sqlite"))
            + ((try? Data(contentsOf: URL(fileURLWithPath: dir.path + "/qpqd.sqlite-wal"))) ?? Data())
        #expect(raw.range(of: Data("hunter2 is not it".utf8)) == nil)
        #expect(raw.range(of: Data(KeyDerivation.sha256(Array("hunter2 is not it".utf8)))) == nil)
        // Session tokens are stored only as SHA-256.
        #expect(raw.range(of: Data(alice.credentials.token)) == nil)
        let hashes = try await db.read { db in try Data.fetchAll(db, sql: "SELECT token_hash FROM sessions") }
        #expect(hashes.contains(Data(KeyDerivation.sha256(alice.credentials.token))))
    }

    @Test("a device proves its identity key at every login; resume with the token; revoke ends it", arguments: StoreKind.allCases)
    func deviceBinding(kind: StoreKind) async throws {
        try await withServerContext(kind) { context, dir in
            let alice = try await registerAndLogin("alice", context: context)
            let id = alice.credentials.deviceId

            // Same device again: accepted with its own key, refused with another key.
            let t2 = InProcessTransport(context: context)
            let again = try await QPQAccount.login(user: "alice", password: Array("correct horse".utf8), deviceId: id, deviceName: "x",
                                                   identity: alice.identity, configuration: testOPAQUE, over: t2)
            #expect(again.deviceId == id)
            let t3 = InProcessTransport(context: context)
            let stolen = await #expect(throws: QPQClientError.self) {
                _ = try await QPQAccount.login(user: "alice", password: Array("correct horse".utf8), deviceId: id, deviceName: "x",
                                               identity: try SignatureScheme.PrivateKey.generate(), configuration: testOPAQUE, over: t3)
            }
            #expect(stolen?.serverCode == .badSignature)

            // Resume on a new connection with the token; a wrong token is refused like a bad password.
            let t4 = InProcessTransport(context: context)
            #expect(try await t4.expect(.resume(deviceId: id, token: alice.credentials.token)) == .resumed(userId: alice.credentials.userId, deviceId: id))
            let t5 = InProcessTransport(context: context)
            let bad = try await t5.call(.resume(deviceId: id, token: zeroToken))
            guard case .error(.authenticationFailed, _, _) = bad else { Issue.record("\(bad)"); return }

            // A second device, listed; revoking it kills its sessions.
            let t6 = InProcessTransport(context: context)
            let phoneKey = try SignatureScheme.PrivateKey.generate()
            let phone = try await QPQAccount.login(user: "alice", password: Array("correct horse".utf8), deviceId: 0, deviceName: "phone",
                                                   identity: phoneKey, configuration: testOPAQUE, over: t6)
            guard case .devices(let list) = try await alice.transport.expect(.listDevices) else { Issue.record("no list"); return }
            #expect(list.map(\.deviceId) == [id, phone.deviceId])
            #expect(list.first?.isCurrent == true && list.last?.name == "phone")
            #expect(try await alice.transport.expect(.revokeDevice(deviceId: phone.deviceId)) == .ok)
            #expect(await alice.transport.lastOutput?.revoked == phone.deviceId)
            let t7 = InProcessTransport(context: context)
            guard case .error(.authenticationFailed, _, _) = try await t7.call(.resume(deviceId: phone.deviceId, token: phone.token)) else {
                Issue.record("revoked session still works"); return
            }
            let t8 = InProcessTransport(context: context)
            let revoked = await #expect(throws: QPQClientError.self) {
                _ = try await QPQAccount.login(user: "alice", password: Array("correct horse".utf8), deviceId: phone.deviceId, deviceName: "phone",
                                               identity: phoneKey, configuration: testOPAQUE, over: t8)
            }
            #expect(revoked?.serverCode == .deviceRevoked)
            // Requests that need a device are refused on an anonymous connection.
            let anon = InProcessTransport(context: context)
            guard case .error(.notAuthenticated, _, _) = try await anon.call(.listGroups) else { Issue.record("anonymous list"); return }
            // Out of order.
            guard case .error(.outOfOrder, _, _) = try await anon.call(.registerFinish(user: "zed", record: [UInt8](repeating: 1, count: 192))) else {
                Issue.record("RegisterFinish without start"); return
            }
        }
    }

    @Test("a replayed LoginFinish is refused: on its connection (outOfOrder), in a new login (authenticationFailed); an old signature with a fresh KE3 (badSignature)", arguments: StoreKind.allCases)
    func replayedLogin(kind: StoreKind) async throws {
        try await withServerContext(kind) { context, dir in
            _ = try await registerAndLogin("alice", context: context)
            let identity = try SignatureScheme.PrivateKey.generate()
            var first = QPQServerSession(context: context)
            var login = try OPAQUEClientLogin(password: Array("correct horse".utf8), configuration: testOPAQUE)
            guard case .loginChallenge(let ke2, let challenge) = first.handle(.loginStart(user: "alice", ke1: login.ke1.bytes)).response else {
                Issue.record("no challenge"); return
            }
            let result = try login.finish(ke2: try KE2(bytes: ke2))
            let signed = QPQDeviceLogin.signedMessage(challenge: challenge, transcriptHash: KeyDerivation.sha256(login.ke1.bytes + ke2),
                                                      user: "alice", deviceId: 0)
            let finish = QPQRequest.loginFinish(ke3: result.ke3.bytes, deviceId: 0, deviceName: "x",
                                                identityKey: identity.publicKey.rawRepresentation,
                                                signature: try identity.sign(signed, context: QPQDeviceLogin.context))
            guard case .loggedIn = first.handle(finish).response else { Issue.record("genuine login refused"); return }
            guard case .error(.outOfOrder, _, _) = first.handle(finish).response else { Issue.record("replay on the same connection"); return }
            // Another connection starts a fresh login; the old KE3 and signature do not fit it.
            var second = QPQServerSession(context: context)
            let other = try OPAQUEClientLogin(password: Array("correct horse".utf8), configuration: testOPAQUE)
            _ = second.handle(.loginStart(user: "alice", ke1: other.ke1.bytes))
            guard case .error(.authenticationFailed, _, _) = second.handle(finish).response else { Issue.record("replay in a new login"); return }
            // A tampered signature (right KE3) is refused with badSignature.
            var third = QPQServerSession(context: context)
            var again = try OPAQUEClientLogin(password: Array("correct horse".utf8), configuration: testOPAQUE)
            guard case .loginChallenge(let ke2b, _) = third.handle(.loginStart(user: "alice", ke1: again.ke1.bytes)).response else { return }
            let r3 = try again.finish(ke2: try KE2(bytes: ke2b))
            let wrongSig = QPQRequest.loginFinish(ke3: r3.ke3.bytes, deviceId: 0, deviceName: "x", identityKey: identity.publicKey.rawRepresentation,
                                                  signature: try identity.sign(signed, context: QPQDeviceLogin.context))
            guard case .error(.badSignature, _, _) = third.handle(wrongSig).response else { Issue.record("old signature accepted"); return }
        }
    }

    @Test("KeyPackages are one-time; the last-resort one is kept; lookup by user name", arguments: StoreKind.allCases)
    func keyPackages(kind: StoreKind) async throws {
        try await withServerContext(kind) { context, dir in
            let alice = try await registerAndLogin("alice", context: context)
            let bob = try await registerAndLogin("bob", context: context)
            #expect(try await bob.transport.expect(.uploadKeyPackages(lastResort: false, packages: [[1], [2]]))
                    == .keyPackagesStored(oneTime: 2, hasLastResort: false))
            #expect(try await bob.transport.expect(.uploadKeyPackages(lastResort: true, packages: [[9]]))
                    == .keyPackagesStored(oneTime: 2, hasLastResort: true))
            let d = bob.credentials.deviceId
            var got: [[UInt8]] = []
            for _ in 0..<4 {
                guard case .keyPackages(let list) = try await alice.transport.expect(.fetchKeyPackages(user: "bob")) else { Issue.record("none"); return }
                #expect(list.map(\.deviceId) == [d])
                got += list.map(\.keyPackage)
            }
            #expect(got == [[1], [2], [9], [9]])
            #expect(try await bob.transport.expect(.keyPackageCount) == .keyPackageCountIs(oneTime: 0, hasLastResort: true))
            guard case .error(.noKeyPackage, _, _) = try await bob.transport.call(.fetchKeyPackages(user: "alice")) else { Issue.record("alice has none"); return }
            guard case .error(.unknownUser, _, _) = try await bob.transport.call(.lookupUser(user: "carol")) else { Issue.record("carol"); return }
            guard case .user(let uid, "bob", let devices) = try await alice.transport.expect(.lookupUser(user: "bob")) else { Issue.record("lookup"); return }
            #expect(uid == bob.credentials.userId)
            #expect(devices == [QPQUserDevice(deviceId: d, identityKey: bob.identity.publicKey.rawRepresentation)])
            // The per-device cap.
            let many = (0..<100).map { [UInt8(truncatingIfNeeded: $0), 1] }
            _ = try await bob.transport.expect(.uploadKeyPackages(lastResort: false, packages: many))
            _ = try await bob.transport.expect(.uploadKeyPackages(lastResort: false, packages: many))
            guard case .error(.limitExceeded, _, _) = try await bob.transport.call(.uploadKeyPackages(lastResort: false, packages: [[7]])) else {
                Issue.record("cap"); return
            }
        }
    }

    @Test("groups: commits sequenced per epoch (the second gets epochMoved), tokens checked, queues at-least-once, ack deletes", arguments: StoreKind.allCases)
    func delivery(kind: StoreKind) async throws {
        try await withServerContext(kind) { context, dir in
            let alice = try await registerAndLogin("alice", context: context)
            let bob = try await registerAndLogin("bob", context: context)
            let carol = try await registerAndLogin("carol", context: context)
            let g: [UInt8] = Array("group-1".utf8)
            let (a, b, c) = (alice.credentials.deviceId, bob.credentials.deviceId, carol.credentials.deviceId)
            #expect(try await alice.transport.expect(.createGroup(groupId: g, tokenHash: tokenHash(0))) == .ok)
            guard case .error(.groupExists, _, _) = try await bob.transport.call(.createGroup(groupId: g, tokenHash: tokenHash(0))) else {
                Issue.record("duplicate group"); return
            }
            // Commit epoch 0 → 1 adding bob, with a welcome for him. Authorized by the token alone:
            // an anonymous connection may send it (sealed sender).
            let anon = InProcessTransport(context: context)
            let c1 = try await anon.expect(.commit(groupId: g, epoch: 0, token: token(0), nextTokenHash: tokenHash(1), add: [b], remove: [],
                                                   commit: [0xC1], welcomes: [QPQWelcome(deviceId: b, welcome: [0x57])]))
            guard case .committed(1, let commitId) = c1 else { Issue.record("\(c1)"); return }
            #expect(await anon.lastOutput?.notify == [a, b])
            // A second commit for epoch 0 loses.
            let lost = try await bob.transport.call(.commit(groupId: g, epoch: 0, token: token(0), nextTokenHash: tokenHash(9), add: [c], remove: [],
                                                            commit: [0xC2], welcomes: []))
            guard case .error(.epochMoved, 1, _) = lost else { Issue.record("second commit: \(lost)"); return }
            // Old token, or a wrong one, for the current epoch: badToken.
            guard case .error(.badToken, _, _) = try await bob.transport.call(.send(groupId: g, epoch: 1, token: token(0), message: [1])) else {
                Issue.record("old token accepted"); return
            }
            guard case .error(.epochMoved, 1, _) = try await bob.transport.call(.send(groupId: g, epoch: 0, token: token(1), message: [1])) else {
                Issue.record("old epoch accepted"); return
            }
            guard case .error(.unknownGroup, _, _) = try await bob.transport.call(.send(groupId: [9], epoch: 0, token: token(1), message: [1])) else {
                Issue.record("unknown group"); return
            }
            guard case .sent(let m1) = try await anon.expect(.send(groupId: g, epoch: 1, token: token(1), message: Array("hello".utf8))) else {
                Issue.record("send"); return
            }
            #expect(m1 > commitId)
            // Bob's queue: welcome, then the message (he was not a member before the commit, so no commit).
            guard case .messages(let bq, false) = try await bob.transport.expect(.fetch(limit: 100)) else { Issue.record("fetch"); return }
            #expect(bq.map(\.kind) == [.welcome, .application])
            #expect(bq.last?.payload == Array("hello".utf8) && bq.last?.epoch == 1)
            // Alice (the committer) sees her commit, then the message; at-least-once until acked.
            guard case .messages(let aq, false) = try await alice.transport.expect(.fetch(limit: 100)) else { Issue.record("fetch"); return }
            #expect(aq.map(\.messageId) == [commitId, m1])
            #expect(aq.map(\.kind) == [.commit, .application])
            guard case .messages(let again, _) = try await alice.transport.expect(.fetch(limit: 100)) else { Issue.record("fetch"); return }
            #expect(again.map(\.messageId) == [commitId, m1])
            #expect(try await alice.transport.expect(.ack(messageIds: [commitId, 424242])) == .acked(deleted: 1))
            guard case .messages(let rest, false) = try await alice.transport.expect(.fetch(limit: 100)) else { Issue.record("fetch"); return }
            #expect(rest.map(\.messageId) == [m1])
            // Members and groups.
            guard case .members(1, let members) = try await bob.transport.expect(.groupMembers(groupId: g)) else { Issue.record("members"); return }
            #expect(members.map(\.user) == ["alice", "bob"])
            guard case .error(.unknownGroup, _, _) = try await carol.transport.call(.groupMembers(groupId: g)) else { Issue.record("carol sees"); return }
            #expect(try await bob.transport.expect(.listGroups) == .groups([QPQGroupSummary(groupId: g, epoch: 1, memberCount: 2)]))
            // Remove bob at epoch 1 → 2: bob gets the commit (he learns of his removal), then nothing more.
            guard case .committed(2, _) = try await alice.transport.expect(.commit(groupId: g, epoch: 1, token: token(1), nextTokenHash: tokenHash(2),
                                                                                  add: [], remove: [b], commit: [0xC3], welcomes: [])) else {
                Issue.record("remove"); return
            }
            _ = try await alice.transport.expect(.send(groupId: g, epoch: 2, token: token(2), message: [0x42]))
            guard case .messages(let bq2, _) = try await bob.transport.expect(.fetch(limit: 100)) else { Issue.record("fetch"); return }
            #expect(bq2.map(\.kind) == [.welcome, .application, .commit])
            // The stored envelopes have no sender column (the PostgreSQL schema is the same, StoreConformanceTests).
            if kind == .sqlite {
                let db = try DatabaseQueue(path: dir.path + "/qpqd.sqlite")
                let columns = try await db.read { db in try db.columns(in: "messages").map(\.name) }
                #expect(columns.sorted() == ["epoch", "expires_at", "group_id", "id", "kind", "payload", "server_time"])
            }
        }
    }

    @Test("concurrent commits for one epoch from many connections: exactly one wins", arguments: StoreKind.allCases)
    func concurrentCommits(kind: StoreKind) async throws {
        try await withServerContext(kind) { context, dir in
            let alice = try await registerAndLogin("alice", context: context)
            let g: [UInt8] = [7, 7]
            _ = try await alice.transport.expect(.createGroup(groupId: g, tokenHash: tokenHash(0)))
            let results = await withTaskGroup(of: QPQResponse?.self) { group in
                for i in 0..<16 {
                    group.addTask {
                        let t = InProcessTransport(context: context)
                        return try? await t.call(.commit(groupId: g, epoch: 0, token: token(0), nextTokenHash: tokenHash(UInt8(i + 1)), add: [],
                                                         remove: [], commit: [UInt8(i)], welcomes: []))
                    }
                }
                var all: [QPQResponse?] = []
                for await r in group { all.append(r) }
                return all
            }
            let wins = results.filter { if case .committed(1, _)? = $0 { return true } else { return false } }
            let moved = results.filter { if case .error(.epochMoved, 1, _)? = $0 { return true } else { return false } }
            #expect(wins.count == 1)
            #expect(moved.count == 15)
        }
    }

    @Test("rate limit and failed-login lockout (injected clock)")
    func rateLimits() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let now = ManualClock()
        let context = try makeServerContext(dir: dir, clock: { now.value })
        let t = InProcessTransport(context: context)
        var limited = 0
        for _ in 0..<450 {
            if case .error(.rateLimited, _, _) = try await t.call(.ping) { limited += 1 }
        }
        #expect(limited == 50)
        now.advance(1000)
        guard case .pong = try await t.call(.ping) else { Issue.record("no refill"); return }
        // Five failed logins lock the connection out for 10 s.
        let l = InProcessTransport(context: context)
        _ = try await QPQAccount.register(user: "dave", password: Array("pw".utf8), configuration: testOPAQUE, over: l)
        for _ in 0..<5 {
            _ = try? await QPQAccount.login(user: "dave", password: Array("nope".utf8), deviceId: 0, deviceName: "x",
                                            identity: try SignatureScheme.PrivateKey.generate(), configuration: testOPAQUE, over: l)
        }
        let locked = await #expect(throws: QPQClientError.self) {
            _ = try await QPQAccount.login(user: "dave", password: Array("pw".utf8), deviceId: 0, deviceName: "x",
                                           identity: try SignatureScheme.PrivateKey.generate(), configuration: testOPAQUE, over: l)
        }
        #expect(locked?.serverCode == .rateLimited)
        now.advance(10_001)
        _ = try await QPQAccount.login(user: "dave", password: Array("pw".utf8), deviceId: 0, deviceName: "x",
                                       identity: try SignatureScheme.PrivateKey.generate(), configuration: testOPAQUE, over: l)
    }
}

/// A clock the test moves by hand.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var ms: UInt64 = 1_000_000
    var value: UInt64 { lock.withLock { ms } }
    func advance(_ by: UInt64) { lock.withLock { ms += by } }
}

@Suite("qpqd core fuzz")
struct ServerFuzzTests {
    @Test("30,000 random requests of every type into a logged-in and an anonymous session: every answer is a valid response")
    func sessionFuzz() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var limits = QPQRateLimits()
        limits.requestsPerSecond = 1e9
        limits.burst = 1e9
        let base = try makeServerContext(dir: dir)
        var context = base
        context.limits = limits
        let alice = try await registerAndLogin("alice", context: context)
        _ = try await alice.transport.expect(.createGroup(groupId: [1], tokenHash: tokenHash(0)))
        var rng = QPQRandom(seed: 0xF022)
        var anonymous = QPQServerSession(context: context)
        var errors = 0
        for i in 0..<30_000 {
            let request = rng.request()
            // Bias some fields towards real values so deeper paths are reached.
            let tuned: QPQRequest
            switch request {
            case .send(_, _, _, let m) where i % 3 == 0: tuned = .send(groupId: [1], epoch: 0, token: token(0), message: m)
            case .ack(let ids) where i % 2 == 0: tuned = .ack(messageIds: ids.map { $0 % 50 })
            case .revokeDevice: tuned = .ping  // keep alice's device alive
            case .logout: tuned = .listDevices
            default: tuned = request
            }
            let response: QPQResponse
            if i % 2 == 0 {
                response = try await alice.transport.call(tuned)
            } else {
                response = anonymous.handle(tuned).response
            }
            if case .error = response { errors += 1 }
            // The response must encode (no field over its limit).
            #expect(throws: Never.self) { _ = try QPQCodec.encode(QPQFrame(requestId: 1, message: .response(response))) }
        }
        #expect(errors > 0 && errors < 30_000)
        // The logged-in session still works.
        guard case .pong = try await alice.transport.call(.ping) else { Issue.record("session broken"); return }
    }
}

@Suite("qpqd login timing", .serialized)
struct LoginTimingTests {
    @Test("a wrong password and an unknown user cost the server the same (alternating runs, medians within 40%)")
    func sameTimingProfile() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var context = try makeServerContext(dir: dir)
        context.limits.maxFailedLogins = Int.max
        context.limits.burst = 1e9
        context.limits.requestsPerSecond = 1e9
        _ = try await registerAndLogin("alice", context: context)
        var session = QPQServerSession(context: context)
        let identity = try SignatureScheme.PrivateKey.generate()
        let finish = QPQRequest.loginFinish(ke3: [UInt8](repeating: 0, count: 64), deviceId: 0, deviceName: "x",
                                            identityKey: identity.publicKey.rawRepresentation,
                                            signature: [UInt8](repeating: 0, count: QPQLimits.signatureSize))
        func attempt(_ user: String) throws -> (UInt64, QPQResponse) {
            let login = try OPAQUEClientLogin(password: Array("wrong".utf8), configuration: testOPAQUE)
            let start = DispatchTime.now().uptimeNanoseconds
            _ = session.handle(.loginStart(user: user, ke1: login.ke1.bytes))
            let response = session.handle(finish).response
            return (DispatchTime.now().uptimeNanoseconds - start, response)
        }
        var known: [UInt64] = [], unknown: [UInt64] = []
        for i in 0..<400 {
            let (t1, r1) = try attempt("alice")
            let (t2, r2) = try attempt("nobody\(i)")
            #expect(r1 == r2, "the answers must be identical")
            if i >= 20 { known.append(t1); unknown.append(t2) }  // after warm-up
        }
        let m1 = Double(known.sorted()[known.count / 2]), m2 = Double(unknown.sorted()[unknown.count / 2])
        print("login failure, server side: registered user \(Int(m1 / 1000)) µs, unknown user \(Int(m2 / 1000)) µs (medians of \(known.count))")
        #expect(abs(m1 - m2) / max(m1, m2) < 0.40)
    }
}

@Suite("disappearing messages", .serialized)
struct DisappearingTests {
    @Test("after the timer the message is gone from the server database (rows and file bytes) and from the client store")
    func disappear() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let now = ManualClock()
        let context = try makeServerContext(dir: dir, clock: { now.value })
        let alice = try await registerAndLogin("alice", context: context)
        let g: [UInt8] = [4, 2]
        _ = try await alice.transport.expect(.createGroup(groupId: g, tokenHash: tokenHash(0)))
        guard case .error(.badToken, _, _) = try await alice.transport.call(.setDisappearing(groupId: g, epoch: 0, token: token(9), seconds: 60)) else {
            Issue.record("timer set without the token"); return
        }
        #expect(try await alice.transport.expect(.setDisappearing(groupId: g, epoch: 0, token: token(0), seconds: 60)) == .ok)
        let secret = Array("this message self-destructs".utf8)
        _ = try await alice.transport.expect(.send(groupId: g, epoch: 0, token: token(0), message: secret))
        guard case .messages(let queued, _) = try await alice.transport.expect(.fetch(limit: 10)) else { Issue.record("fetch"); return }
        let envelope = try #require(queued.first)
        #expect(envelope.expiresAt == now.value + 60_000)
        // Not yet.
        #expect(try context.store.expire(now: now.value + 59_999) == 0)
        now.advance(60_000)
        #expect(try context.store.expire(now: now.value) == 1)
        guard case .messages(let after, _) = try await alice.transport.expect(.fetch(limit: 10)) else { Issue.record("fetch"); return }
        #expect(after.isEmpty)
        let db = try DatabaseQueue(path: dir.path + "/qpqd.sqlite")
        let rows = try await db.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM messages") }
        #expect(rows == 0)
        for suffix in ["", "-wal"] {
            let raw = (try? Data(contentsOf: URL(fileURLWithPath: dir.path + "/qpqd.sqlite" + suffix))) ?? Data()
            #expect(raw.range(of: Data(secret)) == nil, "the message bytes are still in qpqd.sqlite\(suffix)")
        }

        // The client side: a stored message past its time is pruned on save and load.
        var state = QPQClientState(host: "h", port: 1, hostKey: "k")
        let past = QPQLocalStore.wallClockMilliseconds() - 1
        state.messages = [.init(messageId: 1, group: "g", sender: "a", text: "gone", serverTime: 0, expiresAt: past),
                          .init(messageId: 2, group: "g", sender: "a", text: "kept", serverTime: 0)]
        try QPQLocalStore.save(state, path: dir.path + "/c.store", passphrase: "p", memoryKiB: 1024, iterations: 1)
        #expect(try QPQLocalStore.load(path: dir.path + "/c.store", passphrase: "p").messages.map(\.text) == ["kept"])
    }
}
