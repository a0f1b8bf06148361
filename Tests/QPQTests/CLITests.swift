import Foundation
import NIOConcurrencyHelpers
import QNSPCrypto
import Testing

@Suite("qpq CLI against a real qpqd (processes on 127.0.0.1)", .serialized)
struct CLITests {
    @Test("two users: register, login, group create/add/list, send, recv, devices; recv --watch gets a push live", .timeLimit(.minutes(5)))
    func twoUsers() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let host = try HostKeyPair.generate(comment: "cli test")
        try KeyFileIO.writePrivateKey(try PrivateKeyFile.encode(.host(host)), path: dir.path + "/host_key")
        try KeyFileIO.writePublicKey(PublicKeyLine.host(host.publicKey, comment: "qpqd").text + "\n", path: dir.path + "/host_key.pub")
        let server = try QPQDProcess(arguments: ["-p", "0", "-h", dir.path + "/host_key", "--database", dir.path + "/db.sqlite",
                                                 "--opaque-setup", dir.path + "/opaque"])
        let port = try await server.waitForPort()
        let common = ["--server", "127.0.0.1:\(port)", "--host-key", dir.path + "/host_key.pub"]

        func qpq(_ who: String, _ args: [String]) async throws -> ToolRun.Result {
            let r = try await ToolRun.run("qpq", args + ["--store", dir.path + "/\(who).store"] + common,
                                          environment: ["QPQ_PASSWORD": "password of \(who)"])
            #expect(r.status == 0, "qpq \(args) as \(who): \(r.stderr)")
            #expect(!r.stderr.contains("Cannot schedule"), "qpq \(args) as \(who): \(r.stderr)")
            return r
        }
        for who in ["alice", "bob"] {
            #expect(try await qpq(who, ["register", who]).stdout.contains("registered \(who)"))
            #expect(try await qpq(who, ["login", who, "--device-name", "\(who)-laptop"]).stdout.contains("logged in as \(who)"))
        }
        _ = try await qpq("alice", ["group", "create", "friends"])
        #expect(try await qpq("alice", ["group", "add", "friends", "bob"]).stdout.contains("added bob to friends (epoch 1)"))
        _ = try await qpq("alice", ["send", "friends", "hello from alice"])
        let bobRecv = try await qpq("bob", ["recv"])
        #expect(bobRecv.stdout == "[friends] alice: hello from alice\n")
        _ = try await qpq("bob", ["send", "friends", "hi alice"])
        #expect(try await qpq("alice", ["recv"]).stdout == "[friends] bob: hi alice\n")
        #expect(try await qpq("bob", ["recv"]).stdout == "", "nothing twice")
        // Own messages are kept too: the history has both sides, in order.
        #expect(try await qpq("alice", ["history", "friends"]).stdout == "[friends] alice: hello from alice\n[friends] bob: hi alice\n")
        #expect(try await qpq("bob", ["history"]).stdout == "[friends] alice: hello from alice\n[friends] bob: hi alice\n")
        #expect(try await qpq("alice", ["group", "list"]).stdout == "friends\tepoch 1\talice,bob\n")
        #expect(try await qpq("alice", ["disappear", "friends", "1h"]).stdout == "new messages in friends disappear after 1h\n")
        let badDuration = try await ToolRun.run("qpq", ["disappear", "friends", "5x", "--store", dir.path + "/alice.store"],
                                                environment: ["QPQ_PASSWORD": "password of alice"])
        #expect(badDuration.status != 0 && badDuration.stderr.contains("DURATION"))
        let safetyA = try await qpq("alice", ["safety-number", "bob"]).stdout
        let safetyB = try await qpq("bob", ["safety-number", "alice"]).stdout
        #expect(safetyA.count == 72 && safetyA == safetyB, "\(safetyA) / \(safetyB)")
        let devices = try await qpq("alice", ["devices"]).stdout
        #expect(devices.contains("alice-laptop") && devices.contains("(this device)"))

        // A wrong password: the local store does not open.
        let wrong = try await ToolRun.run("qpq", ["recv", "--store", dir.path + "/bob.store"], environment: ["QPQ_PASSWORD": "nope"])
        #expect(wrong.status != 0 && wrong.stderr.contains("cannot decrypt"))

        // recv --watch: bob stays connected and sees alice's message when it is pushed.
        let watch = Process()
        watch.executableURL = URL(fileURLWithPath: try ToolRun.path("qpq"))
        watch.arguments = ["recv", "--watch", "--store", dir.path + "/bob.store"]
        watch.environment = ProcessInfo.processInfo.environment.merging(["QPQ_PASSWORD": "password of bob"]) { $1 }
        let out = Pipe(), err = Pipe()
        watch.standardOutput = out
        watch.standardError = err
        let seen = NIOLockedValueBox(""), seenErr = NIOLockedValueBox("")
        let arrived = DispatchSemaphore(value: 0)
        try watch.run()
        ToolRun.drain(out.fileHandleForReading, onChunk: { text in
            seen.withLockedValue { $0 += text }
            arrived.signal()
        }, done: { _ in arrived.signal() })
        ToolRun.drain(err.fileHandleForReading, onChunk: { text in
            seenErr.withLockedValue { $0 += text }
            arrived.signal()
        }, done: { _ in arrived.signal() })
        /// Waits (on a GCD thread, not the Swift pool) until `condition` holds, at most 30 s.
        func waitFor(_ condition: @escaping @Sendable () -> Bool) async -> Bool {
            await withCheckedContinuation { c in
                DispatchQueue.global().async {
                    let deadline = Date().addingTimeInterval(30)
                    while Date() < deadline {
                        if condition() { c.resume(returning: true); return }
                        _ = arrived.wait(timeout: .now() + .seconds(1))
                    }
                    c.resume(returning: condition())
                }
            }
        }
        // Only once the watcher has subscribed does alice send: the message must come as a push.
        let subscribed = await waitFor { seenErr.withLockedValue { $0.contains("qpq: watching") } }
        #expect(subscribed, "watcher stderr: \(seenErr.withLockedValue { $0 })")
        _ = try await qpq("alice", ["send", "friends", "live message"])
        let got = await waitFor { seen.withLockedValue { $0.contains("[friends] alice: live message\n") } }
        kill(watch.processIdentifier, SIGTERM)
        #expect(got, "watch printed: \(seen.withLockedValue { $0 })")
        watch.waitUntilExit()

        // bob leaves; alice's next recv shows it and commits his removal.
        #expect(try await qpq("bob", ["group", "leave", "friends"]).stdout == "left friends\n")
        #expect(try await qpq("alice", ["recv"]).stdout == "[friends] bob: [left the group]\n")
        #expect(try await qpq("alice", ["group", "list"]).stdout == "friends\tepoch 2\talice\n")
        #expect(try await qpq("bob", ["group", "list"]).stdout == "")
        #expect(try await server.terminate() == 0)
    }

    @Test("qpq register closes its connection before the event loops stop: 60 runs, no NIO 'Cannot schedule tasks' line", .timeLimit(.minutes(5)))
    func registerShutdownOrder() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let host = try HostKeyPair.generate(comment: "cli register test")
        try KeyFileIO.writePrivateKey(try PrivateKeyFile.encode(.host(host)), path: dir.path + "/host_key")
        try KeyFileIO.writePublicKey(PublicKeyLine.host(host.publicKey, comment: "qpqd").text + "\n", path: dir.path + "/host_key.pub")
        let server = try QPQDProcess(arguments: ["-p", "0", "-h", dir.path + "/host_key", "--database", dir.path + "/db.sqlite",
                                                 "--opaque-setup", dir.path + "/opaque"])
        let port = try await server.waitForPort()
        // Before the fix the close ran in a detached task and lost the race to the group's shutdown in about 1 run of 12.
        for i in 0..<60 {
            let r = try await ToolRun.run("qpq", ["register", "user\(i)", "--store", dir.path + "/u.store", "--server", "127.0.0.1:\(port)",
                                                  "--host-key", dir.path + "/host_key.pub"], environment: ["QPQ_PASSWORD": "pw"])
            #expect(r.status == 0 && r.stdout == "registered user\(i)\n", "\(r.stderr)")
            #expect(!r.stderr.contains("Cannot schedule"), "run \(i): \(r.stderr)")
        }
        #expect(try await server.terminate() == 0)
        #expect(!server.stderrText.contains("Cannot schedule"))
    }
}
