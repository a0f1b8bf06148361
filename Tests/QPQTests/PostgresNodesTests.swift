import Foundation
import NIOConcurrencyHelpers
import QNSPCrypto
import Testing

/// Starts a PostgreSQL server off the Swift pool, runs `body`, and stops the server (also if `body` throws).
func withPostgres(_ body: (PostgresServer) async throws -> Void) async throws {
    let server = try await offPool { try PostgresServer() }
    do {
        try await body(server)
    } catch {
        try await offPool { server.stop() }
        throw error
    }
    try await offPool { server.stop() }
}

/// `qpq recv --watch` as a background process whose output is collected; every wait has a deadline.
final class WatchProcess: @unchecked Sendable {
    private let process = Process()
    private let out = NIOLockedValueBox(""), err = NIOLockedValueBox("")
    private let arrived = DispatchSemaphore(value: 0)

    init(_ arguments: [String], password: String) throws {
        process.executableURL = URL(fileURLWithPath: try ToolRun.path("qpq"))
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["QPQ_PASSWORD": password]) { $1 }
        let o = Pipe(), e = Pipe()
        process.standardOutput = o
        process.standardError = e
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let (out, err, arrived) = (self.out, self.err, self.arrived)
        ToolRun.drain(o.fileHandleForReading, onChunk: { t in out.withLockedValue { $0 += t }; arrived.signal() }, done: { _ in arrived.signal() })
        ToolRun.drain(e.fileHandleForReading, onChunk: { t in err.withLockedValue { $0 += t }; arrived.signal() }, done: { _ in arrived.signal() })
    }

    var stdout: String { out.withLockedValue { $0 } }
    var stderr: String { err.withLockedValue { $0 } }

    /// Waits (on a GCD thread, not the Swift pool) until `condition` holds, at most `seconds`.
    func waitFor(seconds: Double = 30, _ condition: @escaping @Sendable (_ stdout: String, _ stderr: String) -> Bool) async -> Bool {
        let (out, err, arrived) = (self.out, self.err, self.arrived)
        return await withCheckedContinuation { c in
            DispatchQueue.global().async {
                let deadline = Date().addingTimeInterval(seconds)
                func holds() -> Bool { condition(out.withLockedValue { $0 }, err.withLockedValue { $0 }) }
                while Date() < deadline {
                    if holds() { c.resume(returning: true); return }
                    _ = arrived.wait(timeout: .now() + .seconds(1))
                }
                c.resume(returning: holds())
            }
        }
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
    }
}

@Suite("qpqd nodes on one PostgreSQL database (a real server)", .serialized, .enabled(if: PostgresServer.enabled))
struct PostgresNodesTests {
    @Test("two qpqd processes on one database: alice on node A, bob on node B; a message sent via A is pushed live to bob's recv --watch on B; concurrent adds through both nodes leave one agreed group; nodes restarted lose nothing accepted",
          .timeLimit(.minutes(6)))
    func twoNodes() async throws {
        try await withPostgres { pg in
            try await offPool { try pg.createDatabase("qpq_nodes") }
            let dir = TempDir()
            defer { dir.cleanup() }
            let host = try HostKeyPair.generate(comment: "qpqd nodes")
            try KeyFileIO.writePrivateKey(try PrivateKeyFile.encode(.host(host)), path: dir.path + "/host_key")
            try KeyFileIO.writePublicKey(PublicKeyLine.host(host.publicKey, comment: "qpqd").text + "\n", path: dir.path + "/host_key.pub")
            /// A node on `port` (0: any free port). A restarted node keeps its port: qpq keeps the server it logged in to.
            func node(port: Int = 0) async throws -> (QPQDProcess, Int) {
                let p = try QPQDProcess(arguments: ["-p", "\(port)", "-h", dir.path + "/host_key", "--database", pg.url(database: "qpq_nodes"),
                                                    "--opaque-setup", dir.path + "/opaque", "--no-quic", "--log-requests"])
                do { return (p, try await p.waitForPort()) } catch { p.killIfRunning(); throw error }
            }
            var (a, portA) = try await node()
            defer { a.killIfRunning() }
            var (b, portB) = try await node()
            defer { b.killIfRunning() }
            #expect(a.stderrText.contains("LISTEN qpq_delivery"), "\(a.stderrText)")

            func qpq(_ who: String, via port: Int, _ args: [String]) async throws -> ToolRun.Result {
                let r = try await ToolRun.run("qpq", args + ["--store", dir.path + "/\(who).store", "--server", "127.0.0.1:\(port)",
                                                             "--host-key", dir.path + "/host_key.pub"],
                                              environment: ["QPQ_PASSWORD": "password of \(who)"], seconds: 120)
                #expect(r.status == 0, "qpq \(args) as \(who): \(r.stderr)")
                return r
            }
            let homes = ["alice": 0, "carol": 0, "bob": 1, "dave": 1]
            func port(_ who: String) -> Int { homes[who] == 0 ? portA : portB }
            for who in ["alice", "bob", "carol", "dave"] {
                _ = try await qpq(who, via: port(who), ["register", who])
                _ = try await qpq(who, via: port(who), ["login", who, "--device-name", "\(who)-laptop"])
            }
            _ = try await qpq("alice", via: portA, ["group", "create", "friends"])
            #expect(try await qpq("alice", via: portA, ["group", "add", "friends", "bob"]).stdout.contains("added bob to friends (epoch 1)"))
            _ = try await qpq("alice", via: portA, ["send", "friends", "hello from A"])
            #expect(try await qpq("bob", via: portB, ["recv"]).stdout == "[friends] alice: hello from A\n")

            // Push across nodes: bob's watcher is connected to B only; alice sends via A.
            let watch = try WatchProcess(["recv", "--watch", "--store", dir.path + "/bob.store", "--server", "127.0.0.1:\(portB)",
                                          "--host-key", dir.path + "/host_key.pub"], password: "password of bob")
            defer { watch.stop() }
            let subscribed = await watch.waitFor { _, err in err.contains("qpq: watching") }
            #expect(subscribed, "watcher stderr: \(watch.stderr)")
            let sentAt = Date()
            _ = try await qpq("alice", via: portA, ["send", "friends", "live via A"])
            let pushed = await watch.waitFor { out, _ in out.contains("[friends] alice: live via A\n") }
            let latency = Date().timeIntervalSince(sentAt)
            #expect(pushed, "watch printed: \(watch.stdout) / \(watch.stderr)\nnode B: \(b.stderrText)")
            print("cross-node push: sent via A, printed by the watcher on B \(String(format: "%.3f", latency)) s after the send started")
            watch.stop()

            // Concurrent commits through both nodes: alice adds carol via A while bob adds dave via B.
            let (pA, pB) = (portA, portB)
            async let addCarol = qpq("alice", via: pA, ["group", "add", "friends", "carol"])
            async let addDave = qpq("bob", via: pB, ["group", "add", "friends", "dave"])
            _ = try await (addCarol, addDave)
            var views: [String] = []
            for who in ["alice", "bob", "carol", "dave"] {
                _ = try await qpq(who, via: port(who), ["recv"])
                views.append(try await qpq(who, via: port(who), ["group", "list"]).stdout)
            }
            #expect(Set(views).count == 1 && views[0].hasPrefix("friends\tepoch 3\t"), "\(views)")
            for who in ["alice", "bob", "carol", "dave"] { #expect(views[0].contains(who), "\(views)") }
            let moved = (a.stderrText + b.stderrText).components(separatedBy: "\n").filter { $0.contains("Commit") && $0.contains("epochMoved") }
            print("concurrent adds through both nodes: \(moved.count) commit(s) answered epochMoved and retried")

            // Restart: a message accepted by A while B is down reaches bob via the new B; both restarted, nothing is lost or repeated.
            #expect(try await b.terminate() == 0)
            _ = try await qpq("alice", via: portA, ["send", "friends", "while B was down"])
            #expect(try await a.terminate() == 0)
            (a, portA) = try await node(port: portA)
            (b, portB) = try await node(port: portB)
            #expect(try await qpq("bob", via: portB, ["recv"]).stdout == "[friends] alice: while B was down\n")
            #expect(try await qpq("bob", via: portB, ["recv"]).stdout == "", "nothing twice")
            #expect(try await qpq("carol", via: portA, ["recv"]).stdout == "[friends] alice: while B was down\n")
            #expect(try await a.terminate() == 0)
            #expect(try await b.terminate() == 0)
        }
    }
}
