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
        defer { server.killIfRunning() }
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
        defer { server.killIfRunning() }
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

    @Test("sealed sender: every Send, Commit and SetDisappearing arrives on a connection that never logged in, one per sending qpq process; Fetch, Ack and blobs on the logged-in one",
          .timeLimit(.minutes(5)))
    func sealedSender() async throws {
        let s = try await CLIServer.start(["--log-requests"], comment: "sealed sender test")
        defer { s.cleanup() }
        for who in ["alice", "bob"] {
            try await s.qpq(who, ["register", who])
            try await s.qpq(who, ["login", who])
        }
        try await s.qpq("alice", ["group", "create", "friends"])
        // Each of these commands sends (or commits) exactly once: one anonymous connection each.
        var sending = 0
        try await s.qpq("alice", ["group", "add", "friends", "bob"]); sending += 1
        let send = try await s.qpq("alice", ["send", "friends", "sealed hello", "-v"]); sending += 1
        #expect(send.stderr.contains("over TCP (for sends and commits; never logs in)"), "\(send.stderr)")
        let recv = try await s.qpq("bob", ["recv", "-v"])
        #expect(recv.stdout == "[friends] alice: sealed hello\n")
        #expect(!recv.stderr.contains("never logs in"), "recv opens no sending connection: \(recv.stderr)")
        try await s.qpq("bob", ["send", "friends", "sealed reply"]); sending += 1
        try await s.qpq("alice", ["disappear", "friends", "1h"]); sending += 1
        let file = s.dir.path + "/note.txt"
        try Data("a small file".utf8).write(to: URL(fileURLWithPath: file))
        try await s.qpq("alice", ["send-file", "friends", file]); sending += 1
        let got = try await s.qpq("bob", ["recv", "--download-dir", s.dir.path + "/bob-files"])
        #expect(got.stdout.contains("[friends] alice: [file] note.txt (12 bytes)"), "\(got.stdout)")
        try await s.qpq("bob", ["group", "leave", "friends"]); sending += 1
        // alice's recv commits bob's removal: a commit, so a sending connection too.
        #expect(try await s.qpq("alice", ["recv"]).stdout == "[friends] bob: [left the group]\n"); sending += 1
        #expect(try await s.qpq("alice", ["group", "list"]).stdout == "friends\tepoch 2\talice\n")
        #expect(try await s.server.terminate() == 0)

        let log = QPQDRequestLog(s.server.stderrText)
        let problems = log.sealedSenderViolations()
        #expect(problems.isEmpty, "\(problems)")
        let anonymous = log.connections(carrying: QPQDRequestLog.tokenRequests)
        #expect(anonymous.count == sending, "one anonymous connection per sending command: \(anonymous.sorted())")
        let count = { (name: String) in log.lines.filter { $0.request == name }.count }
        #expect(count("Send") == 4 && count("Commit") == 2 && count("SetDisappearing") == 1, "\(log.lines)")
        // Everything that needs the device stays on logged-in connections (none of them sends).
        for l in log.lines where ["Fetch", "Ack", "Subscribe", "BlobCreate", "BlobUpload", "BlobDownload", "CreateGroup",
                                  "LookupUser", "FetchKeyPackages", "KeyPackageCount"].contains(l.request) {
            #expect(l.login == "device" && !anonymous.contains(l.connection), "\(l)")
        }
        #expect(count("Fetch") > 0 && count("Ack") > 0 && count("BlobUpload") > 0)
    }

    @Test("twenty users as qpq processes on one qpqd: register, login, group of 20, everyone sends, remove a member, an offline device gets everything in order once",
          .timeLimit(.minutes(10)))
    func twentyUsers() async throws {
        let start = Date()
        let s = try await CLIServer.start(["--log-requests"], comment: "twenty users test")
        defer { s.cleanup() }
        let users = (1...20).map { String(format: "u%02d", $0) }
        let creator = users[0], offline = users[17], removed = users[19]
        try await CLIServer.concurrently(users) { (who: String) async throws in
            #expect(try await s.qpq(who, ["register", who]).stdout == "registered \(who)\n")
            #expect(try await s.qpq(who, ["login", who]).stdout.contains("logged in as \(who)"))
        }
        let setUp = Date()
        try await s.qpq(creator, ["group", "create", "twenty"])
        for (i, who) in users.dropFirst().enumerated() {
            #expect(try await s.qpq(creator, ["group", "add", "twenty", who]).stdout == "added \(who) to twenty (epoch \(i + 1))\n")
        }
        let built = Date()

        // Everyone but the offline device sends once, several at a time (each send first reads its queue: the welcome).
        let online = users.filter { $0 != offline }
        try await CLIServer.concurrently(online) { (who: String) async throws in
            try await s.qpq(who, ["send", "twenty", "hello from \(who)"])
        }
        let round = Set(online.map { "[twenty] \($0): hello from \($0)" })
        // Every online member has each of the 19 messages once (its own included; a send's own
        // queue read stores what had arrived by then, so the history is the record, not recv's output).
        let histories = try await CLIServer.concurrently(online) { (who: String) async throws -> (String, [String]) in
            try await s.qpq(who, ["recv"])
            return (who, try await s.qpq(who, ["history", "twenty"]).stdout.split(separator: "\n").map(String.init))
        }
        for (who, lines) in histories {
            #expect(lines.count == online.count && Set(lines) == round, "\(who)'s history: \(lines)")
        }
        let exchanged = Date()

        // Three messages in a known order, then a removal, then a message the removed member must not read.
        let ordered = (1...3).map { "[twenty] \(users[$0]): ordered \($0)" }
        for i in 1...3 { try await s.qpq(users[i], ["send", "twenty", "ordered \(i)"]) }
        #expect(try await s.qpq(creator, ["group", "remove", "twenty", removed]).stdout == "removed \(removed) from twenty (epoch 20)\n")
        try await s.qpq(users[1], ["send", "twenty", "after the removal"])
        let removedGot = try await s.qpq(removed, ["recv"]).stdout
        #expect(removedGot == ordered.joined(separator: "\n") + "\n", "the removed member reads up to its removal only: \(removedGot)")
        let removedHistory = try await s.qpq(removed, ["history"]).stdout
        #expect(!removedHistory.contains("after the removal"))
        // A member that read the first round and was offline since: the next four, in order, once.
        let member = try await s.qpq(users[4], ["recv"]).stdout
        #expect(member == (ordered + ["[twenty] \(users[1]): after the removal"]).joined(separator: "\n") + "\n", "\(member)")
        #expect(try await s.qpq(users[4], ["recv"]).stdout == "", "nothing twice")

        // The device offline since its login: everything, in order, once.
        let caughtUp = try await s.qpq(offline, ["recv"]).stdout.split(separator: "\n").map(String.init)
        #expect(caughtUp.count == round.count + ordered.count + 1, "\(caughtUp)")
        let first = caughtUp.prefix(round.count)
        #expect(Set(first) == round && Set(first).count == first.count, "\(caughtUp)")
        #expect(Array(caughtUp.dropFirst(round.count)) == ordered + ["[twenty] \(users[1]): after the removal"], "\(caughtUp)")
        #expect(try await s.qpq(offline, ["recv"]).stdout == "", "nothing twice")
        #expect(try await s.qpq(offline, ["group", "list"]).stdout == "twenty\tepoch 20\t\(users.dropLast().joined(separator: ","))\n")
        #expect(try await s.server.terminate() == 0)

        let log = QPQDRequestLog(s.server.stderrText)
        #expect(log.sealedSenderViolations().isEmpty, "\(log.sealedSenderViolations())")
        #expect(log.lines.filter { $0.request == "Commit" }.count == 20)
        let end = Date()
        print("twenty users: register+login \(Int(setUp.timeIntervalSince(start))) s, group of 20 \(Int(built.timeIntervalSince(setUp))) s, "
              + "19 sends + 19 recv/history \(Int(exchanged.timeIntervalSince(built))) s, total \(Int(end.timeIntervalSince(start))) s")
    }
}
