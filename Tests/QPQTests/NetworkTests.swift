import QSSHTestSupport
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QPQServer
import QPQServerNIO
import Testing

/// The next push within 10 s (nil: the connection ended).
func nextPush(_ conn: QPQConnection, seconds: Int64 = 10) async throws -> QPQPush? {
    try await conn.nextPush(timeout: .seconds(seconds))
}

@Suite("qpqd over QNSP on 127.0.0.1", .serialized)
struct NetworkTests {
    static let hostKey: HostKeyPair? = try? HostKeyPair.generate()

    func withServer(_ body: (QPQService, EventLoopGroup, HostPublicKey) async throws -> Void) async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let hostKey = try #require(Self.hostKey)
        let service = try await QPQService.start(group: group, host: "127.0.0.1", port: 0, hostKey: hostKey,
                                                 context: try makeServerContext(dir: dir))
        do {
            try await body(service, group, hostKey.publicKey)
        } catch {
            try? await service.close()
            try? await group.shutdownGracefully()
            throw error
        }
        try await service.close()
        try await group.shutdownGracefully()
    }

    func connect(_ service: QPQService, _ group: EventLoopGroup, _ key: HostPublicKey) async throws -> QPQConnection {
        try await QPQConnection.connect(group: group, host: "127.0.0.1", port: try #require(service.port), hostKey: key,
                                        timeout: .seconds(20))
    }

    func login(_ conn: QPQConnection, _ user: String, register: Bool = true) async throws -> QPQSessionCredentials {
        if register { try await QPQAccount.register(user: user, password: Array("pw-\(user)".utf8), configuration: testOPAQUE, over: conn) }
        return try await QPQAccount.login(user: user, password: Array("pw-\(user)".utf8), deviceId: 0, deviceName: user,
                                          identity: try SignatureScheme.PrivateKey.generate(), configuration: testOPAQUE, over: conn)
    }

    @Test("register, login, KeyPackages, group send, push to a connected device, ack, epochMoved", .timeLimit(.minutes(2)))
    func endToEnd() async throws {
        try await withServer { service, group, key in
            let alice = try await connect(service, group, key)
            let bob = try await connect(service, group, key)
            let a = try await login(alice, "alice")
            let b = try await login(bob, "bob")
            // Wrong password over the wire: authenticationFailed.
            let eve = try await connect(service, group, key)
            let wrong = await #expect(throws: QPQClientError.self) {
                _ = try await QPQAccount.login(user: "alice", password: Array("nope".utf8), deviceId: 0, deviceName: "x",
                                               identity: try SignatureScheme.PrivateKey.generate(), configuration: testOPAQUE, over: eve)
            }
            #expect(wrong?.serverCode == .authenticationFailed)
            await eve.close()

            #expect(try await bob.expect(.uploadKeyPackages(lastResort: false, packages: [[0xB0, 1]])) == .keyPackagesStored(oneTime: 1, hasLastResort: false))
            #expect(try await alice.expect(.fetchKeyPackages(user: "bob")) == .keyPackages([QPQDeviceKeyPackage(deviceId: b.deviceId, keyPackage: [0xB0, 1])]))

            // Bob subscribes: pushes start.
                        #expect(try await bob.expect(.subscribe) == .ok)
            let g: [UInt8] = Array("net-group".utf8)
            #expect(try await alice.expect(.createGroup(groupId: g, tokenHash: tokenHash(0))) == .ok)
            guard case .committed(1, _) = try await alice.expect(.commit(
                groupId: g, epoch: 0, token: token(0), nextTokenHash: tokenHash(1), add: [b.deviceId], remove: [], commit: [0xC0],
                welcomes: [QPQWelcome(deviceId: b.deviceId, welcome: [0x77])])) else { Issue.record("commit"); return }
            guard case .deliver(let welcome)? = try await nextPush(bob) else { Issue.record("no welcome push"); return }
            #expect(welcome.kind == .welcome && welcome.payload == [0x77])

            guard case .sent(let m) = try await alice.expect(.send(groupId: g, epoch: 1, token: token(1), message: Array("hi bob".utf8))) else {
                Issue.record("send"); return
            }
            guard case .deliver(let msg)? = try await nextPush(bob) else { Issue.record("no message push"); return }
            #expect(msg.messageId == m && msg.payload == Array("hi bob".utf8) && msg.kind == .application)

            // A concurrent commit for the same epoch from bob: one wins, the other gets epochMoved.
            async let fromAlice = alice.call(.commit(groupId: g, epoch: 1, token: token(1), nextTokenHash: tokenHash(2), add: [], remove: [],
                                                     commit: [0xA1], welcomes: []))
            async let fromBob = bob.call(.commit(groupId: g, epoch: 1, token: token(1), nextTokenHash: tokenHash(3), add: [], remove: [],
                                                 commit: [0xB1], welcomes: []))
            let results = try await [fromAlice, fromBob]
            let wins = results.filter { if case .committed(2, _) = $0 { return true } else { return false } }.count
            let moved = results.filter { if case .error(.epochMoved, 2, _) = $0 { return true } else { return false } }.count
            #expect(wins == 1 && moved == 1, "\(results)")

            // Ack deletes: bob acks what he got; after reconnecting only the rest comes again.
            guard case .deliver(let commit2)? = try await nextPush(bob) else { Issue.record("no commit push"); return }
            #expect(commit2.kind == .commit)
            #expect(try await bob.expect(.ack(messageIds: [welcome.messageId, msg.messageId])) == .acked(deleted: 2))
            await bob.close()
            let bob2 = try await connect(service, group, key)
            guard case .resumed(_, b.deviceId) = try await bob2.expect(.resume(deviceId: b.deviceId, token: b.token)) else { Issue.record("resume"); return }
                        #expect(try await bob2.expect(.subscribe) == .ok)
            guard case .deliver(let again)? = try await nextPush(bob2) else { Issue.record("no redelivery"); return }
            #expect(again.messageId == commit2.messageId, "the unacknowledged commit comes again, the acked ones do not")
            _ = a
            await alice.close()
            await bob2.close()
        }
    }

    @Test("the server's sweeper deletes a disappearing message once its timer has run out", .timeLimit(.minutes(2)))
    func sweeper() async throws {
        try await withServer { service, group, key in
            let conn = try await connect(service, group, key)
            _ = try await login(conn, "dora")
            let g: [UInt8] = [9]
            _ = try await conn.expect(.createGroup(groupId: g, tokenHash: tokenHash(0)))
            _ = try await conn.expect(.setDisappearing(groupId: g, epoch: 0, token: token(0), seconds: 3))
            _ = try await conn.expect(.send(groupId: g, epoch: 0, token: token(0), message: [1, 2, 3]))
            guard case .messages(let first, _) = try await conn.expect(.fetch(limit: 10)) else { Issue.record("fetch"); return }
            #expect(first.count == 1)
            // A 3 s timer (a 1 s one could run out between the send and the first fetch on a busy
            // machine); the sweeper runs every second: within 15 s the queue must be empty.
            var gone = false
            for _ in 0..<75 where !gone {
                try await Task.sleep(nanoseconds: 200_000_000)
                if case .messages(let now, _) = try await conn.expect(.fetch(limit: 10)), now.isEmpty { gone = true }
            }
            #expect(gone, "the expired message is still queued")
            await conn.close()
        }
    }

    @Test("revoking a device pushes Revoked and closes its connection", .timeLimit(.minutes(3)))
    func revokePush() async throws {
        try await withServer { service, group, key in
            let laptop = try await connect(service, group, key)
            _ = try await login(laptop, "carol")
            let phone = try await connect(service, group, key)
            let p = try await login(phone, "carol", register: false)
                        #expect(try await laptop.expect(.revokeDevice(deviceId: p.deviceId)) == .ok)
            #expect(try await nextPush(phone) == .revoked)
            #expect(try await nextPush(phone) == nil, "the stream ends when the server closes")
            await laptop.close()
        }
    }

    @Test("random and tampered frames on the wire get errors or a close, never a crash; the server keeps serving", .timeLimit(.minutes(2)))
    func garbageOnTheWire() async throws {
        try await withServer { service, group, key in
            var rng = QPQRandom(seed: 99)
            for round in 0..<20 {
                let conn = try await connect(service, group, key)
                var wire: [UInt8] = []
                for _ in 0..<50 {
                    var body = try QPQCodec.encodeBody(rng.frame())
                    if !body.isEmpty { body[Int.random(in: 0..<body.count, using: &rng)] ^= 0x5A }
                    if round % 5 == 0 { body = rng.bytes(Int.random(in: 1...40, using: &rng)) }
                    let n = UInt32(body.count)
                    wire += [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + body
                }
                if round == 19 { wire += [0xFF, 0xFF, 0xFF, 0xFF] }  // an oversized length: error, then close
                try await conn.channel.writeAndFlush(conn.channel.allocator.buffer(bytes: wire))
                await conn.close()
            }
            // Still serving.
            let ok = try await connect(service, group, key)
            guard case .pong = try await ok.expect(.ping) else { Issue.record("no pong"); return }
            await ok.close()
        }
    }
}
