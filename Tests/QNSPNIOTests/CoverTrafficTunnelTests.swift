import Crypto
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSP
import QNSPNIO
import Testing

@Suite("Cover traffic over NIO", .serialized)
struct CoverTrafficTunnelTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    /// Connects a client with `policy` to an echo server with the same; returns the client channel
    /// and a recorder of the client's wire bytes.
    ///
    /// These tests are synchronous and wait on NIO futures: an `await` needs a thread of Swift's
    /// cooperative pool to resume, and in the full parallel run that pool (one thread per core)
    /// is often held by tests blocked on subprocesses, which stalled this test for minutes.
    func session(_ policy: CoverTrafficPolicy?, handlers: @escaping @Sendable () -> [ChannelHandler] = { [] }) throws -> (Channel, Channel, WireRecorder) {
        var options = QNSPBootstrap.Options()
        options.padding = policy
        let server = try QNSPBootstrap.bindServer(group: group, host: "127.0.0.1", port: 0, parameters: NIOKeys.serverParameters, options: options) { ch, _ in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Echo()) }
        }.wait()
        let port = try #require(server.localAddress?.port)
        let recorder = WireRecorder()
        let (client, handshake) = try QNSPBootstrap.connect(group: group, host: "127.0.0.1", port: port, parameters: NIOKeys.clientParameters(), options: options) { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(recorder, position: .first)
                try ch.pipeline.syncOperations.addHandlers(handlers())
            }
        }.wait()
        _ = try handshake.wait()
        return (client, server, recorder)
    }

    func wait(_ seconds: Double) throws {
        try group.next().scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {}.futureResult.wait()
    }

    @Test("constant: an idle session sends the budget's cells each way, nothing more; a bulk echo is held to the budget and arrives intact", .timeLimit(.minutes(3)))
    func constantRate() throws {
        var policy = CoverTrafficPolicy(mode: .constant)
        // 500 cells/s (not more): the budget must hold while the rest of the suite runs in parallel
        // on a debug build, so that a shortfall means the scheduler, not a starved machine.
        let cellsPerSecond = 500.0
        policy.constantCellsPerSecond = Int(cellsPerSecond)
        // Idle: about the budget out and in (both ends pad), nothing from the application.
        // Each phase prints its wall time, so a stall in a loaded full run says where it was.
        let testStart = NIODeadline.now()
        func phase(_ name: String) {
            print("constant, \(name) at \(Double((NIODeadline.now() - testStart).nanoseconds) / 1e9) s")
        }
        let (idle, idleServer, idleWire) = try session(policy)
        phase("idle session established")
        let before = idleWire.totals
        let idleStart = NIODeadline.now()
        try wait(2.0)
        let after = idleWire.totals
        let idleSeconds = Double((NIODeadline.now() - idleStart).nanoseconds) / 1e9
        let outCells = Double(after.1 - before.1) / 768, inCells = Double(after.0 - before.0) / 768
        let expected = cellsPerSecond * idleSeconds
        print("constant, idle \(idleSeconds) s: \(outCells) cells out, \(inCells) cells in (budget \(expected))")
        #expect(
            outCells > 0.5 * expected && outCells < 1.3 * expected && inCells > 0.5 * expected && inCells < 1.3 * expected,
            "out \(outCells), in \(inCells), budget \(expected)")
        try idle.close().wait()
        try idleServer.close().wait()
        phase("idle session closed")
        // Bulk: 1 MiB echoed; the rate cannot exceed 500 cells/s x 749 bytes ≈ 375 kB/s each way.
        let total = 1 << 20
        let done = group.next().makePromise(of: (SHA256Digest, SHA256Digest).self)
        let start = NIODeadline.now()
        let (bulk, bulkServer, _) = try session(policy) { [BulkClient(total: total, done: done)] }
        let (sent, received) = try done.futureResult.wait()
        let seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        #expect(sent == received)
        let rate = Double(total) / seconds
        print("constant, 1 MiB echo: \(seconds) s, \(rate / 1e6) MB/s (budget \(cellsPerSecond * 749 / 1e6) MB/s)")
        #expect(rate < cellsPerSecond * 749 * 1.15, "faster than the budget: \(rate) B/s")
        try bulk.close().wait()
        try bulkServer.close().wait()
        phase("bulk session closed")
        try group.syncShutdownGracefully()
    }

    @Test("random: data arrives intact, dummy cells flow while idle; off: an idle session sends nothing", .timeLimit(.minutes(3)))
    func randomAndOff() throws {
        var policy = CoverTrafficPolicy(mode: .random)
        policy.burstsPerSecond = 5
        let total = 1 << 20
        let done = group.next().makePromise(of: (SHA256Digest, SHA256Digest).self)
        let (client, server, wire) = try session(policy) { [BulkClient(total: total, done: done)] }
        let (sent, received) = try done.futureResult.wait()
        #expect(sent == received)
        let mark = wire.totals
        try wait(1.0)
        let idleOut = wire.totals.1 - mark.1
        print("random, idle 1 s after 1 MiB: \(idleOut / 768) cells out")
        #expect(idleOut > 0 && idleOut % 768 == 0)
        try client.close().wait()
        try server.close().wait()

        let (quiet, quietServer, quietWire) = try session(nil)
        let m = quietWire.totals
        try wait(0.5)
        #expect(quietWire.totals == m, "an idle session without padding sent cells")
        try quiet.close().wait()
        try quietServer.close().wait()
        try group.syncShutdownGracefully()
    }
}
