import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QNSPQUIC
import QPQClient
import QPQProtocol
import QPQServerNIO
import Testing

/// Frames over 2 MiB on real connections (docs/messaging.md §1, §7.1), over TCP and over QUIC.
@Suite("large frames over QNSP on 127.0.0.1 (TCP and QUIC)", .serialized)
struct LargeFrameNetworkTests {
    @Test("a 5 MiB-welcome Commit: refused and closed before login, accepted after it, pushed to the new member", .timeLimit(.minutes(3)),
          arguments: [QPQCarrier.tcp, .quic])
    func largeCommit(carrier: QPQCarrier) async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let hostKey = try HostKeyPair.generate()
        let service = try await QPQService.start(group: group, host: "127.0.0.1", port: 0, hostKey: hostKey, context: try makeServerContext(dir: dir))
        let credentials = try QUICCertificateStore.loadOrCreate(hostKeyPath: dir.path + "/host_key")
        _ = try await service.startQUIC(group: group, host: "127.0.0.1", credentials: credentials).get()
        func connect() async throws -> QPQConnection {
            let c = try await QPQConnection.connect(group: group, host: "127.0.0.1", port: try #require(service.port), hostKey: hostKey.publicKey,
                                                    timeout: .seconds(20), carrier: carrier)
            #expect(c.carrier == carrier)
            return c
        }
        func login(_ conn: QPQConnection, _ user: String) async throws -> QPQSessionCredentials {
            try await QPQAccount.register(user: user, password: Array("pw-\(user)".utf8), configuration: testOPAQUE, over: conn)
            return try await QPQAccount.login(user: user, password: Array("pw-\(user)".utf8), deviceId: 0, deviceName: user,
                                              identity: try SignatureScheme.PrivateKey.generate(), configuration: testOPAQUE, over: conn)
        }
        let alice = try await connect(), bob = try await connect()
        _ = try await login(alice, "alice")
        let b = try await login(bob, "bob")
        #expect(try await bob.expect(.subscribe) == .ok)
        let g = Array("big-frames".utf8)
        #expect(try await alice.expect(.createGroup(groupId: g, tokenHash: tokenHash(0))) == .ok)
        var rng = QPQRandom(seed: 5)
        let welcome = (0..<(5 * 1024 * 1024)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let commit = QPQRequest.commit(groupId: g, epoch: 0, token: token(0), nextTokenHash: tokenHash(1), add: [b.deviceId], remove: [],
                                       commit: [0xC0], welcomes: [QPQWelcome(deviceId: b.deviceId, welcome: welcome)])

        // Without a login the same frame is over the 2 MiB limit: tooLarge, and the connection closes.
        let anonymous = try await connect()
        let refused = await #expect(throws: QPQClientError.self) { _ = try await anonymous.call(commit) }
        // The server answers tooLarge with request id 0 and closes; the client sees the close.
        #expect(refused == .connection("the server closed the connection"), "\(String(describing: refused))")
        await anonymous.close()
        // The same request with a small welcome on an anonymous connection is judged on its merits
        // (a wrong token here): only the size was refused.
        let anonymous2 = try await connect()
        let small = QPQRequest.commit(groupId: g, epoch: 0, token: token(9), nextTokenHash: tokenHash(1), add: [b.deviceId], remove: [],
                                      commit: [0xC0], welcomes: [QPQWelcome(deviceId: b.deviceId, welcome: [1])])
        let judged = await #expect(throws: QPQClientError.self) { _ = try await anonymous2.expect(small) }
        #expect(judged?.serverCode == .badToken, "\(String(describing: judged))")
        await anonymous2.close()

        // Logged in: accepted, and the 5 MiB welcome reaches bob as a push (a server frame over 2 MiB).
        guard case .committed(1, _) = try await alice.expect(commit) else { Issue.record("commit not accepted"); return }
        let push = try await bob.nextPush(timeout: .seconds(30))
        guard case .deliver(let e)? = push else { Issue.record("no push: \(String(describing: push))"); return }
        #expect(e.kind == .welcome && e.payload == welcome)
        await alice.close()
        await bob.close()
        try await service.close()
        try await group.shutdownGracefully()
    }
}
