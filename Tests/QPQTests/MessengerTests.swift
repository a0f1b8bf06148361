import QSSHTestSupport
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QPQServerNIO
import Testing

@Suite("qpq client: MLS groups through qpqd, encrypted local store", .serialized)
struct MessengerTests {
    @Test("three users: create a group, add, exchange MLS messages both ways; a non-member gets nothing; a removed member cannot read new messages", .timeLimit(.minutes(3)))
    func twoUsersExchange() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let hostKey = try HostKeyPair.generate()
        let service = try await QPQService.start(group: group, host: "127.0.0.1", port: 0, hostKey: hostKey, context: try makeServerContext(dir: dir))
        let port = try #require(service.port)
        let keyLine = PublicKeyLine.host(hostKey.publicKey, comment: "").text

        func device(_ user: String) async throws -> (QPQMessenger, QPQConnection) {
            let conn = try await QPQConnection.connect(group: group, host: "127.0.0.1", port: port, hostKey: hostKey.publicKey, timeout: .seconds(30))
            try await QPQAccount.register(user: user, password: Array("pw".utf8), configuration: testOPAQUE, over: conn)
            let m = try QPQMessenger(state: QPQClientState(host: "127.0.0.1", port: port, hostKey: keyLine), transport: conn)
            try await m.login(user: user, password: Array("pw".utf8), deviceName: user, configuration: QOPAQUEConfigurationChoice(testOPAQUE))
            return (m, conn)
        }
        let (alice, ac) = try await device("alice")
        let (bob, bc) = try await device("bob")
        let (carol, cc) = try await device("carol")
        try await alice.createGroup("friends")
        try await alice.add(user: "bob", to: "friends")
        try await alice.send("hello bob", to: "friends")
        let got = try await bob.receive()
        #expect(got.map(\.text) == ["hello bob"])
        #expect(got.first?.sender == "alice")
        #expect(try bob.members(of: "friends").sorted() == ["alice", "bob"])
        try await bob.send("hi alice", to: "friends")
        let back = try await alice.receive()
        #expect(back.map { "\($0.sender): \($0.text)" } == ["bob: hi alice"])
        // Nothing twice: the queue was acknowledged.
        #expect(try await bob.receive().isEmpty)
        // Carol is not a member: she gets nothing and has no group.
        #expect(try await carol.receive().isEmpty)
        #expect(carol.state.groups.isEmpty)
        // Bob's view of the epoch follows alice's.
        #expect(try alice.epoch(of: "friends") == (try bob.epoch(of: "friends")))

        // Safety numbers: both sides see the same 60 digits; another pair sees another number.
        let ab = try await alice.safetyNumber(with: "bob")
        #expect(ab.count == 60 && ab.allSatisfy(\.isNumber))
        #expect(try await bob.safetyNumber(with: "alice") == ab)
        #expect(try await alice.safetyNumber(with: "carol") != ab)
        #expect(QPQSafetyNumber.formatted(ab).split(separator: "\n").count == 3)

        // Carol joins, then bob is removed: carol reads alice's next message, bob gets nothing, and
        // the ciphertext itself is useless to him.
        try await alice.add(user: "carol", to: "friends")
        _ = try await bob.receive()   // the commit adding carol
        _ = try await carol.receive() // the welcome
        try await alice.remove(user: "bob", from: "friends")
        _ = try await bob.receive()   // the commit removing him
        _ = try await carol.receive()
        #expect(try alice.members(of: "friends").sorted() == ["alice", "carol"])
        try await alice.send("after bob left", to: "friends")
        guard case .messages(let raw, _) = try await cc.expect(.fetch(limit: 10)) else { Issue.record("fetch"); return }
        let secret = try #require(raw.last)
        #expect(bob.process(secret) == nil, "a removed member cannot read a message of the new epoch")
        #expect(try await bob.receive().isEmpty)
        #expect(try await carol.receive().map(\.text) == ["after bob left"])
        for c in [ac, bc, cc] { await c.close() }
        try await service.close()
        try await group.shutdownGracefully()
    }

    @Test("twenty users in one group: everyone gets every other member's message once, in order; an offline member catches up", .timeLimit(.minutes(5)))
    func twentyUsers() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let hostKey = try HostKeyPair.generate()
        let service = try await QPQService.start(group: group, host: "127.0.0.1", port: 0, hostKey: hostKey, context: try makeServerContext(dir: dir))
        let port = try #require(service.port)
        let keyLine = PublicKeyLine.host(hostKey.publicKey, comment: "").text
        var members: [(QPQMessenger, QPQConnection)] = []
        for i in 0..<20 {
            let user = "user\(i)"
            let conn = try await QPQConnection.connect(group: group, host: "127.0.0.1", port: port, hostKey: hostKey.publicKey, timeout: .seconds(60))
            try await QPQAccount.register(user: user, password: Array("pw".utf8), configuration: testOPAQUE, over: conn)
            let m = try QPQMessenger(state: QPQClientState(host: "127.0.0.1", port: port, hostKey: keyLine), transport: conn)
            try await m.login(user: user, password: Array("pw".utf8), deviceName: user, configuration: QOPAQUEConfigurationChoice(testOPAQUE))
            members.append((m, conn))
        }
        let owner = members[0].0
        try await owner.createGroup("twenty")
        for i in 1..<20 { try await owner.add(user: "user\(i)", to: "twenty") }
        // Everyone but user19 (offline) catches up with the adds, then sends one message.
        for i in 1..<19 { _ = try await members[i].0.receive() }
        for i in 0..<19 {
            // Members process what is queued first (the other adds), so their epoch is current.
            if i > 0 { _ = try await members[i].0.receive() }
            try await members[i].0.send("message \(i)", to: "twenty")
        }
        #expect(try owner.members(of: "twenty").count == 20)
        // The offline member comes back: welcome, then every message, in order, once.
        let late = try await members[19].0.receive()
        #expect(late.map(\.text) == (0..<19).map { "message \($0)" })
        #expect(late.map(\.sender) == (0..<19).map { "user\($0)" })
        #expect(try await members[19].0.receive().isEmpty)
        // Every member has seen every other member's message exactly once.
        for i in 0..<19 {
            _ = try await members[i].0.receive()
            let texts = members[i].0.state.messages.filter { $0.own != true }.map(\.text)
            #expect(Set(texts) == Set((0..<19).filter { $0 != i }.map { "message \($0)" }), "user\(i) saw \(texts)")
            #expect(texts.count == 18)
            // Its own message is in its history once, as its own.
            #expect(members[i].0.state.messages.filter { $0.own == true }.map(\.text) == ["message \(i)"])
        }
        for (_, c) in members { await c.close() }
        try await service.close()
        try await group.shutdownGracefully()
    }

    @Test("group leave: a self-Remove proposal, committed by the next member online; the leaver's state is gone, the others see it", .timeLimit(.minutes(3)))
    func leave() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let hostKey = try HostKeyPair.generate()
        let service = try await QPQService.start(group: group, host: "127.0.0.1", port: 0, hostKey: hostKey, context: try makeServerContext(dir: dir))
        let port = try #require(service.port)
        let keyLine = PublicKeyLine.host(hostKey.publicKey, comment: "").text
        func device(_ user: String) async throws -> (QPQMessenger, QPQConnection) {
            let conn = try await QPQConnection.connect(group: group, host: "127.0.0.1", port: port, hostKey: hostKey.publicKey, timeout: .seconds(30))
            try await QPQAccount.register(user: user, password: Array("pw".utf8), configuration: testOPAQUE, over: conn)
            let m = try QPQMessenger(state: QPQClientState(host: "127.0.0.1", port: port, hostKey: keyLine), transport: conn)
            try await m.login(user: user, password: Array("pw".utf8), deviceName: user, configuration: QOPAQUEConfigurationChoice(testOPAQUE))
            return (m, conn)
        }
        let (alice, ac) = try await device("alice")
        let (bob, bc) = try await device("bob")
        let (carol, cc) = try await device("carol")
        try await alice.createGroup("friends")
        try await alice.add(user: "bob", to: "friends")
        try await alice.add(user: "carol", to: "friends")
        _ = try await bob.receive()
        _ = try await carol.receive()
        let epoch = try alice.epoch(of: "friends")

        try await bob.leave("friends")
        #expect(bob.state.groups["friends"] == nil)
        #expect(bob.state.messages.last?.text == QPQMessenger.leftText)
        // Alice sees the leave and commits bob's removal (the server drops his device too).
        let seen = try await alice.receive()
        #expect(seen.map { "\($0.sender): \($0.text)" } == ["bob: \(QPQMessenger.leftText)"])
        #expect(try alice.members(of: "friends").sorted() == ["alice", "carol"])
        #expect(try alice.epoch(of: "friends") == epoch + 1)
        guard case .members(_, let onServer) = try await ac.expect(.groupMembers(groupId: Array("friends".utf8))) else {
            Issue.record("members"); return
        }
        #expect(onServer.map(\.user).sorted() == ["alice", "carol"])
        // Carol saw the proposal too, then alice's commit: nothing left for her to commit.
        let carolSaw = try await carol.receive()
        #expect(carolSaw.map(\.text) == [QPQMessenger.leftText])
        #expect(try carol.members(of: "friends").sorted() == ["alice", "carol"])
        #expect(try carol.epoch(of: "friends") == epoch + 1)
        #expect(carol.state.leaves.isEmpty && alice.state.leaves.isEmpty)
        // The group goes on without bob: carol reads alice, bob gets nothing.
        try await alice.send("after bob left", to: "friends")
        #expect(try await carol.receive().map(\.text) == ["after bob left"])
        #expect(try await bob.receive().isEmpty)
        guard case .messages(let left, _) = try await bc.expect(.fetch(limit: 10)) else { Issue.record("fetch"); return }
        #expect(left.isEmpty, "bob's device is no longer a member on the server")
        for c in [ac, bc, cc] { await c.close() }
        try await service.close()
        try await group.shutdownGracefully()
    }

    @Test("the local store is encrypted: no plaintext on disk, wrong passphrase and tampering refused, 0600")
    func localStore() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var state = QPQClientState(host: "127.0.0.1", port: 1, hostKey: "k")
        state.user = "alice"
        state.identitySeed = Data(repeating: 0xAB, count: 32)
        state.messages = [.init(messageId: 1, group: "g", sender: "bob", text: "secret plans", serverTime: 0)]
        let path = dir.path + "/client.store"
        try QPQLocalStore.save(state, path: path, passphrase: "pass phrase", memoryKiB: 1024, iterations: 1)
        let raw = try #require(FileManager.default.contents(atPath: path))
        #expect(raw.range(of: Data("secret plans".utf8)) == nil)
        #expect(raw.range(of: Data("alice".utf8)) == nil)
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        let back = try QPQLocalStore.load(path: path, passphrase: "pass phrase")
        #expect(back.messages == state.messages && back.identitySeed == state.identitySeed)
        #expect(throws: QPQLocalStore.Failure.cannotDecrypt) { try QPQLocalStore.load(path: path, passphrase: "wrong") }
        var tampered = Array(raw)
        tampered[tampered.count - 20] ^= 1
        #expect(throws: QPQLocalStore.Failure.cannotDecrypt) { try QPQLocalStore.open(tampered, passphrase: "pass phrase") }
        var header = Array(raw)
        header[25] ^= 1  // the iteration count is authenticated too
        #expect(throws: QPQLocalStore.Failure.self) { try QPQLocalStore.open(header, passphrase: "pass phrase") }
        // Random bytes never crash the parser.
        var rng = QPQRandom(seed: 5)
        for _ in 0..<2000 {
            _ = try? QPQLocalStore.open(rng.bytes(Int.random(in: 0...80, using: &rng)), passphrase: "x")
        }
    }
}
