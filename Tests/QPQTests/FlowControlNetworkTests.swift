import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QPQServerNIO
import Testing

/// The server's per-connection byte budget (docs/messaging.md §13) on a real connection: a client
/// pipelining large Commits is not read past the budget, and is answered in order afterwards.
@Suite("qpqd flow control on 127.0.0.1", .serialized)
struct FlowControlNetworkTests {
    /// Holds the server's request handling until opened (blocks a pool thread, on purpose).
    final class Gate: @unchecked Sendable {
        private let condition = NSCondition()
        private var open = false
        private var armed = false
        func arm() { condition.lock(); armed = true; condition.unlock() }
        func pass() {
            condition.lock()
            while armed && !open { condition.wait() }
            condition.unlock()
        }
        func release() { condition.lock(); open = true; condition.broadcast(); condition.unlock() }
    }

    @Test("pipelined 3 MiB Commits: the server holds at most its budget, then answers all in order", .timeLimit(.minutes(3)))
    func pipelinedLargeCommits() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let hostKey = try HostKeyPair.generate()
        let gate = Gate()
        let maxHeld = NIOLockedValueBox(0)
        let (pauses, pauseSink) = AsyncStream<Int>.makeStream()
        let budget = 8 * 1024 * 1024
        let flow = QPQFlowControl(maxHeldBytes: budget, maxLargeInFlight: 4, beforeRequest: { gate.pass() }, observe: { held, paused in
            maxHeld.withLockedValue { $0 = max($0, held) }
            if paused { pauseSink.yield(held) }
        })
        let service = try await QPQService.start(group: group, host: "127.0.0.1", port: 0, hostKey: hostKey,
                                                 context: try makeServerContext(dir: dir), flow: flow)
        let conn = try await QPQConnection.connect(group: group, host: "127.0.0.1", port: try #require(service.port), hostKey: hostKey.publicKey,
                                                   timeout: .seconds(90))
        try await QPQAccount.register(user: "alice", password: Array("pw-alice".utf8), configuration: testOPAQUE, over: conn)
        let a = try await QPQAccount.login(user: "alice", password: Array("pw-alice".utf8), deviceId: 0, deviceName: "alice",
                                           identity: try SignatureScheme.PrivateKey.generate(), configuration: testOPAQUE, over: conn)
        let g = Array("flow".utf8)
        #expect(try await conn.expect(.createGroup(groupId: g, tokenHash: tokenHash(0))) == .ok)

        // From here the server handles nothing until the gate opens: everything sent is held or unread.
        gate.arm()
        var rng = QPQRandom(seed: 11)
        let welcome = (0..<(3 * 1024 * 1024)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let rounds = 10
        var large: [EventLoopFuture<QPQResponse>] = []
        var small: [EventLoopFuture<QPQResponse>] = []
        for k in 1...rounds {
            // A large Commit with a wrong token (refused on its merits), then a valid small one.
            large.append(conn.start(.commit(groupId: g, epoch: UInt64(k - 1), token: token(200), nextTokenHash: tokenHash(201), add: [a.deviceId],
                                            remove: [], commit: [0xC0], welcomes: [QPQWelcome(deviceId: a.deviceId, welcome: welcome)])))
            small.append(conn.start(.commit(groupId: g, epoch: UInt64(k - 1), token: token(UInt8(k - 1)), nextTokenHash: tokenHash(UInt8(k)),
                                            add: [], remove: [], commit: [0xC0], welcomes: [])))
        }
        // 30 MiB sent; the server stops reading once it holds the budget.
        var iterator = pauses.makeAsyncIterator()
        let pausedAt = try #require(await iterator.next())
        #expect(pausedAt >= budget / 2)
        gate.release()

        for k in 1...rounds {
            let refused = try await large[k - 1].get()
            guard case .error = refused else { Issue.record("round \(k): large Commit answered \(refused)"); continue }
            let response = try await small[k - 1].get()
            guard case .committed(let epoch, _) = response else { Issue.record("round \(k): \(response)"); continue }
            #expect(epoch == UInt64(k))
        }
        // One read's worth of slack above the budget (reading stops at the first read over it).
        let held = maxHeld.withLockedValue { $0 }
        #expect(held <= budget + 1024 * 1024, "held \(held) bytes with a budget of \(budget)")
        #expect(held >= budget, "the budget was never reached (\(held) bytes): the test proves nothing")
        pauseSink.finish()
        await conn.close()
        try await service.close()
        try await group.shutdownGracefully()
    }
}
