import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import Testing

@Suite("qpqd as a real process", .serialized)
struct QPQDTests {
    @Test("qpqd starts, serves, exits 0 on SIGTERM, and after a restart has lost nothing", .timeLimit(.minutes(2)))
    func processLifecycle() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let host = try HostKeyPair.generate(comment: "qpqd test")
        try KeyFileIO.writePrivateKey(try PrivateKeyFile.encode(.host(host)), path: dir.path + "/host_key")
        let args = ["-p", "0", "-h", dir.path + "/host_key", "--database", dir.path + "/db.sqlite", "--opaque-setup", dir.path + "/opaque"]
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            try await lifecycle(dir: dir, host: host, args: args, group: group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    func lifecycle(dir: TempDir, host: HostKeyPair, args: [String], group: EventLoopGroup) async throws {

        let first = try QPQDProcess(arguments: args)
        let port = try await first.waitForPort()
        #expect(first.stderrText.contains("qpqd: listening on 127.0.0.1:\(port)\n"))
        let conn = try await QPQConnection.connect(group: group, host: "127.0.0.1", port: port, hostKey: host.publicKey, timeout: .seconds(20))
        try await QPQAccount.register(user: "alice", password: Array("pw".utf8), configuration: testOPAQUE, over: conn)
        let alice = try await QPQAccount.login(user: "alice", password: Array("pw".utf8), deviceId: 0, deviceName: "laptop",
                                               identity: try SignatureScheme.PrivateKey.generate(), configuration: testOPAQUE, over: conn)
        _ = try await conn.expect(.createGroup(groupId: [1, 2, 3], tokenHash: tokenHash(0)))
        guard case .sent(let id) = try await conn.expect(.send(groupId: [1, 2, 3], epoch: 0, token: token(0), message: Array("kept".utf8))) else {
            Issue.record("send"); return
        }
        await conn.close()
        #expect(try await first.terminate() == 0)
        #expect(first.stderrText.contains("qpqd: stopped"))
        #expect(!first.stderrText.contains("Cannot schedule"), "\(first.stderrText)")
        // Secrets are 0600.
        for file in ["/opaque", "/db.sqlite"] {
            let mode = (try FileManager.default.attributesOfItem(atPath: dir.path + file)[.posixPermissions] as? NSNumber)?.intValue
            #expect(mode == 0o600, "\(file) mode \(String(describing: mode))")
        }

        // Restarted on the same files: the session, the group and the accepted message are there.
        let second = try QPQDProcess(arguments: args)
        let port2 = try await second.waitForPort()
        let again = try await QPQConnection.connect(group: group, host: "127.0.0.1", port: port2, hostKey: host.publicKey, timeout: .seconds(20))
        #expect(try await again.expect(.resume(deviceId: alice.deviceId, token: alice.token)) == .resumed(userId: alice.userId, deviceId: alice.deviceId))
        guard case .messages(let queued, false) = try await again.expect(.fetch(limit: 10)) else { Issue.record("fetch"); return }
        #expect(queued.map(\.messageId) == [id])
        #expect(queued.first?.payload == Array("kept".utf8))
        await again.close()
        #expect(try await second.terminate() == 0)
    }

    @Test("SIGTERM while connections keep the storage pool busy: exit 0, no NIO 'Cannot schedule tasks' line", .timeLimit(.minutes(3)))
    func terminateUnderLoad() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        for round in 0..<3 {
            let dir = TempDir()
            defer { dir.cleanup() }
            let host = try HostKeyPair.generate(comment: "qpqd load")
            try KeyFileIO.writePrivateKey(try PrivateKeyFile.encode(.host(host)), path: dir.path + "/host_key")
            // One storage thread and many connections: work is queued in the pool when SIGTERM comes.
            let server = try QPQDProcess(arguments: ["-p", "0", "-h", dir.path + "/host_key", "--database", dir.path + "/db.sqlite",
                                                     "--opaque-setup", dir.path + "/opaque", "--threads", "1",
                                                     "--requests-per-second", "1000000"])
            let port = try await server.waitForPort()
            var conns: [QPQConnection] = []
            for _ in 0..<12 {
                conns.append(try await QPQConnection.connect(group: group, host: "127.0.0.1", port: port, hostKey: host.publicKey,
                                                            timeout: .seconds(20)))
            }
            let answered = NIOLockedValueBox(0)
            let busy = conns.map { conn in
                Task {
                    // Pings until the server goes away (each is one pool job on the server).
                    while (try? await conn.call(.ping)) != nil { answered.withLockedValue { $0 += 1 } }
                }
            }
            // SIGTERM once the pool has answered a few hundred (checked every 10 ms, at most 60 s).
            let deadline = Date().addingTimeInterval(60)
            while answered.withLockedValue({ $0 }) < 300 * (round + 1), Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(answered.withLockedValue { $0 } >= 300, "the server answered too few pings to be busy")
            #expect(try await server.terminate() == 0)
            for t in busy { await t.value }
            for c in conns { await c.close() }
            #expect(server.stderrText.contains("qpqd: stopped"))
            #expect(!server.stderrText.contains("Cannot schedule"), "round \(round): \(server.stderrText)")
        }
        try await group.shutdownGracefully()
    }

    @Test("qpqd refuses a missing host key with a clear message", .timeLimit(.minutes(3)))
    func missingHostKey() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let p = try QPQDProcess(arguments: ["-p", "0", "-h", dir.path + "/nope", "--database", dir.path + "/db", "--opaque-setup", dir.path + "/o"])
        let status = try await p.waitForExit()
        #expect(status != 0)
        #expect(p.stderrText.contains("qpqd:"))
    }
}
