import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSPCrypto
import QOPAQUE
import QPQClient
import QPQProtocol
import QPQServer
import QPQServerNIO
import QPQServerPostgres
import QPQTools
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

/// Polls `condition` until it holds, at most `seconds` (blocking; off the Swift pool).
func waitUntil(seconds: Double = 30, _ condition: () -> Bool) throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    let pause = DispatchSemaphore(value: 0)
    while Date() < deadline {
        if condition() { return true }
        _ = pause.wait(timeout: .now() + .milliseconds(20))  // pacing of the poll; the condition decides
    }
    return condition()
}

/// The `Ack` requests a node answered so far (its `--log-requests` lines).
func ackCount(_ log: String) -> Int { log.components(separatedBy: "\n").filter { $0.hasSuffix(" Ack ok") }.count }

/// `qpq recv --watch` as a background process whose output is collected; every wait has a deadline.
final class WatchProcess: @unchecked Sendable {
    private let process = Process()
    private let out = NIOLockedValueBox(""), err = NIOLockedValueBox("")
    private let arrived = DispatchSemaphore(value: 0)
    private let exited = DispatchSemaphore(value: 0)

    init(_ arguments: [String], password: String) throws {
        process.executableURL = URL(fileURLWithPath: try ToolRun.path("qpq"))
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["QPQ_PASSWORD": password]) { $1 }
        let o = Pipe(), e = Pipe()
        process.standardOutput = o
        process.standardError = e
        process.standardInput = FileHandle.nullDevice
        process.terminationHandler = { [exited] _ in exited.signal() }
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

    /// SIGTERM (for a `defer`).
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
    }

    /// SIGTERM, then waits (on a GCD thread) until it exited, so that it has stored and acknowledged
    /// what it printed before the next `qpq` opens the same store; SIGKILL after `seconds`.
    func stopAndWait(seconds: Double = 20) async -> Bool {
        stop()
        let exited = self.exited, pid = process.processIdentifier
        return await withCheckedContinuation { c in
            DispatchQueue.global().async {
                if exited.wait(timeout: .now() + seconds) == .success { c.resume(returning: true); return }
                kill(pid, SIGKILL)
                c.resume(returning: false)
            }
        }
    }
}

@Suite("qpqd nodes on one PostgreSQL database (a real server)", .serialized, .enabled(if: PostgresServer.enabled))
struct PostgresNodesTests {
    @Test("two qpqd processes on one database: alice on node A, bob on node B; a message sent via A is pushed live to bob's recv --watch on B; two commits to one epoch through both nodes: one accepted, one epochMoved, one agreed group; a notification missed while B cannot LISTEN is made up when it listens again; nodes restarted lose nothing accepted",
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
            /// Node A has the password in its URL, node B gets it from PGPASSWORD.
            func node(port: Int = 0, passwordInURL: Bool = true) async throws -> (QPQDProcess, Int) {
                let url = pg.url(database: "qpq_nodes", withPassword: passwordInURL)
                let p = try QPQDProcess(arguments: ["-p", "\(port)", "-h", dir.path + "/host_key", "--database", url,
                                                    "--opaque-setup", dir.path + "/opaque", "--no-quic", "--log-requests",
                                                    // One storage thread, so one pooled connection, open after the first request.
                                                    "--threads", "1"],
                                        environment: passwordInURL ? [:] : ["PGPASSWORD": PostgresServer.password])
                do { return (p, try await p.waitForPort()) } catch { p.killIfRunning(); throw error }
            }
            var (a, portA) = try await node()
            defer { a.killIfRunning() }
            var (b, portB) = try await node(passwordInURL: false)
            defer { b.killIfRunning() }
            #expect(a.stderrText.contains("LISTEN qpq_delivery"), "\(a.stderrText)")
            #expect(!a.stderrText.contains(PostgresServer.password), "qpqd never prints the password")
            // A wrong password: refused with PostgreSQL's reason.
            let wrong = try await ToolRun.run("qpqd", ["-p", "0", "-h", dir.path + "/host_key", "--opaque-setup", dir.path + "/opaque", "--no-quic",
                                                       "--database", "postgres://qpq:wrong@127.0.0.1:\(pg.port)/qpq_nodes"])
            #expect(wrong.status == 1 && wrong.stderr.contains("password authentication failed"), "\(wrong.stderr)")

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
            /// Acks answered by node B so far: a watcher acknowledges after it printed, so the test waits for the
            /// ack before it stops the watcher (else the message stays queued and comes again, at least once).
            let firstB = b
            let acks1 = ackCount(firstB.stderrText)
            let sentAt = Date()
            _ = try await qpq("alice", via: portA, ["send", "friends", "live via A"])
            let pushed = await watch.waitFor { out, _ in out.contains("[friends] alice: live via A\n") }
            let latency = Date().timeIntervalSince(sentAt)
            #expect(pushed, "watch printed: \(watch.stdout) / \(watch.stderr)\nnode B: \(b.stderrText)")
            print("cross-node push: sent via A, printed by the watcher on B \(String(format: "%.3f", latency)) s after the send started")
            let acked1 = try await offPool { try waitUntil { ackCount(firstB.stderrText) > acks1 } }
            #expect(acked1, "the watcher acknowledged")
            #expect(await watch.stopAndWait())

            // Concurrent commits to one epoch through both nodes: alice adds carol via A while bob adds
            // dave via B. The test holds the delivery lock until both commits wait for it, so both
            // were sent for epoch 1: exactly one is accepted, the other answered epochMoved (and qpq
            // processes the winner's commit and retries, so both adds land, at epochs 2 and 3).
            func commitOutcomes() -> [String] {
                (a.stderrText + "\n" + b.stderrText).components(separatedBy: "\n").filter { $0.contains(" Commit ") }
            }
            let before = commitOutcomes().count
            let lock = try await offPool { try DeliveryLockHolder(pg.location(database: "qpq_nodes")) }
            let (pA, pB) = (portA, portB)
            async let addCarol = qpq("alice", via: pA, ["group", "add", "friends", "carol"])
            async let addDave = qpq("bob", via: pB, ["group", "add", "friends", "dave"])
            let lined = try await offPool { try lock.waitForWaiters(2) }
            try await offPool { try lock.release() }
            #expect(lined, "two commits waited for the delivery lock")
            _ = try await (addCarol, addDave)
            let raced = Array(commitOutcomes().dropFirst(before))
            // Both first attempts (one per node), then the loser's retry.
            #expect(raced.count == 3 && raced.filter { $0.hasSuffix("Commit error epochMoved") }.count == 1
                    && raced.filter { $0.hasSuffix("Commit ok") }.count == 2, "\(raced)")
            var views: [String] = []
            for who in ["alice", "bob", "carol", "dave"] {
                _ = try await qpq(who, via: port(who), ["recv"])
                views.append(try await qpq(who, via: port(who), ["group", "list"]).stdout)
            }
            #expect(Set(views).count == 1 && views[0].hasPrefix("friends\tepoch 3\t"), "\(views)")
            for who in ["alice", "bob", "carol", "dave"] { #expect(views[0].contains(who), "\(views)") }

            // A missed notification: B's LISTEN connection is killed and cannot reconnect (the database
            // takes no new connections; the nodes' pooled ones stay) while alice sends via A. Once B
            // listens again it wakes its devices and bob's watcher gets the message.
            let watch2 = try WatchProcess(["recv", "--watch", "--store", dir.path + "/bob.store", "--server", "127.0.0.1:\(portB)",
                                           "--host-key", dir.path + "/host_key.pub"], password: "password of bob")
            defer { watch2.stop() }
            #expect(await watch2.waitFor { _, err in err.contains("qpq: watching") }, "watcher stderr: \(watch2.stderr)")
            try await offPool {
                try pg.execute("ALTER DATABASE qpq_nodes ALLOW_CONNECTIONS false", database: "postgres")
                try pg.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN qpq_delivery'", database: "postgres")
            }
            let lost = try await offPool { [b] in try waitUntil { b.stderrText.contains("qpqd: PostgreSQL LISTEN connection lost") } }
            #expect(lost, "node B: \(b.stderrText)")
            let acks2 = ackCount(firstB.stderrText)
            _ = try await qpq("alice", via: portA, ["send", "friends", "while B was not listening"])
            #expect(!b.stderrText.contains("qpqd: PostgreSQL LISTEN again"), "B could not listen while the alice's message was queued")
            try await offPool { try pg.execute("ALTER DATABASE qpq_nodes ALLOW_CONNECTIONS true", database: "postgres") }
            let caughtUp = await watch2.waitFor { out, _ in out.contains("[friends] alice: while B was not listening\n") }
            #expect(caughtUp, "watch printed: \(watch2.stdout)\nnode B: \(b.stderrText)")
            #expect(b.stderrText.contains("qpqd: PostgreSQL LISTEN again; waking every connected device"), "\(b.stderrText)")
            let acked2 = try await offPool { try waitUntil { ackCount(firstB.stderrText) > acks2 } }
            #expect(acked2, "the watcher acknowledged")
            #expect(await watch2.stopAndWait())

            // Restart: a message accepted by A while B is down reaches bob via the new B; both restarted, nothing is lost or repeated.
            #expect(try await b.terminate() == 0)
            let oldB = b.stderrText
            _ = try await qpq("alice", via: portA, ["send", "friends", "while B was down"])
            #expect(try await a.terminate() == 0)
            (a, portA) = try await node(port: portA)
            (b, portB) = try await node(port: portB, passwordInURL: false)
            let bobAfter = try await qpq("bob", via: portB, ["recv"]).stdout
            #expect(bobAfter == "[friends] alice: while B was down\n", "\(bobAfter)\nnode B: \(oldB.suffix(1500))\nwatcher: \(watch2.stderr)")
            #expect(try await qpq("bob", via: portB, ["recv"]).stdout == "", "nothing twice")
            #expect(try await qpq("carol", via: portA, ["recv"]).stdout
                    == "[friends] alice: while B was not listening\n[friends] alice: while B was down\n")
            #expect(try await a.terminate() == 0)
            #expect(try await b.terminate() == 0)
            #expect(!(a.stderrText + b.stderrText).contains("Cannot schedule"))
        }
    }

    @Test("the LISTEN side: another node's deliveries (300 ids per notification) and revocations arrive, the node's own are skipped; after its connection is killed it reconnects and asks for a resync",
          .timeLimit(.minutes(3)))
    func listener() async throws {
        try await withPostgres { pg in
            try await offPool {
                try pg.createDatabase("qpq_listen")
                let nodeA = try PostgresStore(location: pg.location(database: "qpq_listen"))
                let nodeB = try PostgresStore(location: pg.location(database: "qpq_listen"))
                let events = NIOLockedValueBox<[PostgresPushListener.Event]>([])
                let arrived = DispatchSemaphore(value: 0)
                let listener = try PostgresPushListener(store: nodeB) { event in
                    events.withLockedValue { $0.append(event) }
                    arrived.signal()
                }
                defer { listener.stop() }
                func next() -> PostgresPushListener.Event? {
                    guard arrived.wait(timeout: .now() + 30) == .success else { return nil }
                    return events.withLockedValue { $0.removeFirst() }
                }
                let u = try nodeA.createUser(name: "u", record: [0], now: 1)
                let d1 = try nodeA.addDevice(userId: u, name: "1", identityKey: [1], now: 1)
                let d2 = try nodeA.addDevice(userId: u, name: "2", identityKey: [2], now: 1)
                let g: [UInt8] = [1]
                try nodeA.createGroup(groupId: g, tokenHash: [0], creator: d1, now: 1)
                _ = try nodeB.send(groupId: g, epoch: 0, tokenHash: [0], message: [1], now: 2)  // B's own: skipped
                _ = try nodeA.send(groupId: g, epoch: 0, tokenHash: [0], message: [2], now: 2)
                #expect(next() == .deliver([d1]))
                _ = try nodeA.commit(QPQCommitRequest(groupId: g, epoch: 0, tokenHash: [0], nextTokenHash: [1], add: [d2], remove: [], commit: [3],
                                                      welcomes: [QPQWelcome(deviceId: d2, welcome: [4])]), now: 3)
                #expect(next() == .deliver([d1, d2]))
                try nodeA.revokeDevice(userId: u, deviceId: d2)
                #expect(next() == .revoke(d2))
                // A refused request notifies nothing.
                #expect(throws: QPQServiceError.self) { try nodeA.send(groupId: g, epoch: 0, tokenHash: [0], message: [5], now: 4) }

                // 320 recipients: two notifications, 300 ids and 20.
                var devices = [d1]
                for n in 0..<20 {
                    let user = try nodeA.createUser(name: "m\(n)", record: [0], now: 5)
                    for k in 0..<16 { devices.append(try nodeA.addDevice(userId: user, name: "\(k)", identityKey: [UInt8(k)], now: 5)) }
                }
                _ = try nodeA.commit(QPQCommitRequest(groupId: g, epoch: 1, tokenHash: [1], nextTokenHash: [2], add: Array(devices.dropFirst()),
                                                      remove: [], commit: [6], welcomes: []), now: 6)
                #expect(next() == .deliver([d1]))
                _ = try nodeA.send(groupId: g, epoch: 2, tokenHash: [2], message: [7], now: 7)
                let sorted = devices.sorted()
                #expect(next() == .deliver(Array(sorted.prefix(300))))
                #expect(next() == .deliver(Array(sorted.dropFirst(300))))

                // The LISTEN connection dies: the listener reconnects and asks for a resync, then hears again.
                try pg.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN qpq_delivery'", database: "qpq_listen")
                #expect(next() == .disconnected)
                #expect(next() == .resync)
                _ = try nodeA.send(groupId: g, epoch: 2, tokenHash: [2], message: [8], now: 8)
                #expect(next() == .deliver(Array(sorted.prefix(300))))
                #expect(next() == .deliver(Array(sorted.dropFirst(300))))
                #expect(events.withLockedValue { $0.isEmpty })
            }
        }
    }

    @Test("revocation across nodes: carol's laptop on node A revokes her phone, connected to node B only; B pushes Revoked to the phone and closes its connection (two QPQService nodes in process, wired as qpqd wires them)",
          .timeLimit(.minutes(3)))
    func revokeAcrossNodes() async throws {
        try await withPostgres { pg in
            let (storeA, storeB) = try await offPool {
                try pg.createDatabase("qpq_revoke")
                return (try PostgresStore(location: pg.location(database: "qpq_revoke")), try PostgresStore(location: pg.location(database: "qpq_revoke")))
            }
            let setup = try OPAQUEServerSetup.generate()
            let hostKey = try HostKeyPair.generate()
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
            var nodes: [(QPQService, PostgresPushListener)] = []
            do {
                for store in [storeA, storeB] {
                    let context = QPQServerContext(store: store, opaque: OPAQUEServer(setup: setup, configuration: .qpqDefault))
                    let service = try await QPQService.start(group: group, host: "127.0.0.1", port: 0, hostKey: hostKey, context: context)
                    let registry = service.registry
                    let listener = try await offPool {
                        try PostgresPushListener(store: store, handler: QPQDCommand.wakeLocalDevices(registry) { _ in })
                    }
                    nodes.append((service, listener))
                }
                func connect(_ node: Int) async throws -> QPQConnection {
                    try await QPQConnection.connect(group: group, host: "127.0.0.1", port: try #require(nodes[node].0.port), hostKey: hostKey.publicKey,
                                                    timeout: .seconds(20))
                }
                let laptop = try await connect(0)
                try await QPQAccount.register(user: "carol", password: Array("pw".utf8), configuration: testOPAQUE, over: laptop)
                _ = try await QPQAccount.login(user: "carol", password: Array("pw".utf8), deviceId: 0, deviceName: "laptop",
                                               identity: try SignatureScheme.PrivateKey.generate(), configuration: testOPAQUE, over: laptop)
                let phone = try await connect(1)
                let p = try await QPQAccount.login(user: "carol", password: Array("pw".utf8), deviceId: 0, deviceName: "phone",
                                                   identity: try SignatureScheme.PrivateKey.generate(), configuration: testOPAQUE, over: phone)
                // The registries take a device just after its login answer: wait for both (a revocation before that would find no connection).
                let (registryA, registryB) = (nodes[0].0.registry, nodes[1].0.registry)
                let registered = try await offPool { try waitUntil { registryA.connectedDevices == 1 && registryB.connectedDevices == 1 } }
                #expect(registered, "one device on each node")
                #expect(try await laptop.expect(.revokeDevice(deviceId: p.deviceId)) == .ok)
                #expect(try await nextPush(phone) == .revoked)
                #expect(try await nextPush(phone) == nil, "node B closes the revoked device's connection")
                await laptop.close()
            } catch {
                for (service, listener) in nodes { try? await offPool { listener.stop() }; try? await service.close() }
                try? await group.shutdownGracefully()
                throw error
            }
            for (service, listener) in nodes { try await offPool { listener.stop() }; try await service.close() }
            try await group.shutdownGracefully()
            try await offPool { storeA.close(); storeB.close() }
        }
    }
}
