import Foundation
import QNSPCrypto
import QSSHTestSupport
import Testing

@Suite("qpq chat in a real terminal (tmux), against a real qpqd", .serialized)
struct ChatTests {
    @Test("alice chats in tmux: history, bob's message live and escaped, Enter sends to bob, Ctrl-C restores the shell",
          .enabled(if: TmuxPane.available), .timeLimit(.minutes(5)))
    func chatInTmux() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let host = try HostKeyPair.generate(comment: "chat test")
        try KeyFileIO.writePrivateKey(try PrivateKeyFile.encode(.host(host)), path: dir.path + "/host_key")
        try KeyFileIO.writePublicKey(PublicKeyLine.host(host.publicKey, comment: "qpqd").text + "\n", path: dir.path + "/host_key.pub")
        let server = try QPQDProcess(arguments: ["-p", "0", "-h", dir.path + "/host_key", "--database", dir.path + "/db.sqlite",
                                                 "--opaque-setup", dir.path + "/opaque", "--log-requests"])
        defer { server.killIfRunning() }
        let port = try await server.waitForPort()
        let common = ["--server", "127.0.0.1:\(port)", "--host-key", dir.path + "/host_key.pub"]
        func qpq(_ who: String, _ args: [String]) async throws -> ToolRun.Result {
            let r = try await ToolRun.run("qpq", args + ["--store", dir.path + "/\(who).store"] + common,
                                          environment: ["QPQ_PASSWORD": "password of \(who)"])
            #expect(r.status == 0, "qpq \(args) as \(who): \(r.stderr)")
            return r
        }
        for who in ["alice", "bob"] {
            _ = try await qpq(who, ["register", who])
            _ = try await qpq(who, ["login", who])
        }
        _ = try await qpq("alice", ["group", "create", "friends"])
        _ = try await qpq("alice", ["group", "add", "friends", "bob"])
        _ = try await qpq("bob", ["send", "friends", "sent before the chat"])

        // Not a terminal: a clear error, not a garbled screen.
        let piped = try await ToolRun.run("qpq", ["chat", "friends", "--store", dir.path + "/alice.store"],
                                          environment: ["QPQ_PASSWORD": "password of alice"])
        #expect(piped.status != 0 && piped.stderr.contains("needs a terminal"), "\(piped.stderr)")

        let tmux = TmuxPane(socket: "qpq-chat-\(getpid())", scratch: dir.path)
        defer { tmux.kill() }
        try tmux.start(width: 100, height: 30, command: "cd '\(dir.path)' && PS1='READY> ' QPQ_PASSWORD='password of alice' sh")
        try await tmux.waitFor("READY>")
        tmux.type("stty -g > tty.before", enter: true)
        tmux.type("'\(try ToolRun.path("qpq"))' chat friends --store alice.store; echo CHAT-EXIT=$?", enter: true)
        // The status line is drawn after the subscription: from here on messages come as pushes.
        try await tmux.waitFor("-- connected as alice; members: alice, bob")
        try await tmux.waitFor("bob: sent before the chat")

        _ = try await qpq("bob", ["send", "friends", "live from bob \u{1B}[2J\u{1B}]0;pwned\u{07} end"])
        try await tmux.waitFor(#"bob: live from bob \x1b[2J\x1b]0;pwned\x07 end"#)

        tmux.type("hello from the chat", enter: true)
        try await tmux.waitFor("alice: hello from the chat")
        let bobGot = try await qpq("bob", ["recv"]).stdout
        #expect(bobGot == "[friends] alice: hello from the chat\n", "bob got: \(bobGot)")

        tmux.key("C-c")
        try await tmux.waitFor("CHAT-EXIT=0")
        try await tmux.waitFor("READY>", after: "CHAT-EXIT=0")
        tmux.type("stty -g | cmp - tty.before && echo TTY-$((40+2))-RESTORED", enter: true)
        try await tmux.waitFor("TTY-42-RESTORED")

        // The store kept what the chat showed: a plain recv has nothing new, and the chat's
        // history comes back on the next start.
        #expect(try await qpq("alice", ["recv"]).stdout == "")
        tmux.type("clear", enter: true)
        try await tmux.waitFor("READY>")
        tmux.type("'\(try ToolRun.path("qpq"))' chat friends --store alice.store; echo CHAT2-EXIT=$?", enter: true)
        try await tmux.waitFor(#"bob: live from bob \x1b[2J"#)
        try await tmux.waitFor("\n" + String(repeating: "-", count: 100) + "\n>")
        // SIGWINCH: the screen is redrawn at the new width.
        tmux.resize(width: 70, height: 20)
        // (tmux itself cuts and scrolls the old screen; only a redraw puts the title back on the
        // first row with a rule as wide as the window.)
        try await tmux.waitUntil("the screen redrawn at 70x20") { screen in
            screen.hasPrefix("qpq chat friends") && screen.contains("\n" + String(repeating: "-", count: 70) + "\n>")
        }
        tmux.type("/quit", enter: true)
        try await tmux.waitFor("READY>", after: "CHAT2-EXIT=0")
        #expect(try await server.terminate() == 0)
        // The chat's line went out on a connection that never logged in, not on its push connection.
        let log = QPQDRequestLog(server.stderrText)
        #expect(log.sealedSenderViolations().isEmpty, "\(log.sealedSenderViolations())")
        let pushConnections = Set(log.lines.filter { $0.request == "Subscribe" }.map(\.connection))
        #expect(!pushConnections.isEmpty && log.lines.filter { $0.request == "Send" }.count == 3
                && log.connections(carrying: ["Send"]).isDisjoint(with: pushConnections), "\(log.lines)")
    }

    @Test("files in the chat: bob's send-file appears live as [file N], /get N saves it (hash checked, not over an existing file), over --max-download and a tampered chunk are chat lines",
          .enabled(if: TmuxPane.available), .timeLimit(.minutes(5)))
    func downloadsInTheChat() async throws {
        let s = try await FileTransferTests.setUp()
        defer { s.dir.cleanup() }
        defer { s.server.killIfRunning() }
        let dir = s.dir.path
        // Before the chat: a file whose second stored chunk is then flipped (shown from the history).
        _ = try FileTransferTests.randomFile(dir + "/doc.bin", size: 600_000, seed: 21)
        try await s.qpq("bob", ["send-file", "friends", dir + "/doc.bin"])
        _ = try await FileTransferTests.flipByteOfSecondChunk(database: dir + "/db.sqlite")
        // The name the live file is saved under is taken already: the chat must pick another.
        try FileManager.default.createDirectory(atPath: dir + "/dl", withIntermediateDirectories: true)
        try Data("old".utf8).write(to: URL(fileURLWithPath: dir + "/dl/rep[31mort.bin"))

        let tmux = TmuxPane(socket: "qpq-chatfiles-\(getpid())", scratch: dir)
        defer { tmux.kill() }
        try tmux.start(width: 120, height: 30, command: "cd '\(dir)' && PS1='READY> ' QPQ_PASSWORD='password of alice' sh")
        try await tmux.waitFor("READY>")
        tmux.type("'\(try ToolRun.path("qpq"))' chat friends --store alice.store --download-dir dl --max-download 1M; echo CHAT-EXIT=$?", enter: true)
        try await tmux.waitFor("-- connected as alice; members: alice, bob")
        try await tmux.waitFor("bob: [file 1] doc.bin (585.9 KiB) - /get 1 downloads it")

        // Live: bob sends while the chat is open; the name carries an escape sequence.
        let sha = try FileTransferTests.randomFile(dir + "/data.bin", size: 700_000, seed: 22)
        try await s.qpq("bob", ["send-file", "friends", dir + "/data.bin", "--name", "rep\u{1B}[31mort.bin"])
        try await tmux.waitFor(#"bob: [file 2] rep\x1b[31mort.bin (683.6 KiB) - /get 2 downloads it"#)
        let start = Date()
        tmux.type("/get 2", enter: true)
        try await tmux.waitFor("-- saved dl/rep[31mort (1).bin")
        let took = Date().timeIntervalSince(start)
        #expect(FileTransferTests.sha(dir + "/dl/rep[31mort (1).bin") == sha)
        #expect(FileManager.default.contents(atPath: dir + "/dl/rep[31mort.bin") == Data("old".utf8))

        // Over --max-download: a chat line, nothing written, the file stays pending.
        let bigSha = try FileTransferTests.randomFile(dir + "/big.bin", size: 1_500_000, seed: 23)
        try await s.qpq("bob", ["send-file", "friends", dir + "/big.bin"])
        try await tmux.waitFor("bob: [file 3] big.bin (1.4 MiB) - /get 3 downloads it")
        tmux.type("/get 3", enter: true)
        try await tmux.waitFor("!! not downloaded: big.bin (1500000 bytes) is over --max-download (1048576 bytes)")

        // The tampered one: refused as recv refuses it, nothing saved.
        tmux.type("/get 1", enter: true)
        try await tmux.waitFor("!! file 1 not saved: chunk 1 of the file doc.bin fails authentication (tampered or corrupt): refused")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir + "/dl")) == ["rep[31mort.bin", "rep[31mort (1).bin"])

        // Still chatting: a line reaches bob, /help answers, unknown commands are not sent.
        tmux.type("/frobnicate", enter: true)
        try await tmux.waitFor("!! unknown command /frobnicate (/help lists")
        tmux.type("/help", enter: true)
        try await tmux.waitFor("--   /get N       download the file shown as [file N]")
        tmux.type("after the files", enter: true)
        try await tmux.waitFor("alice: after the files")
        tmux.key("C-c")
        try await tmux.waitFor("CHAT-EXIT=0")
        let bobGot = try await s.qpq("bob", ["recv"]).stdout
        #expect(bobGot == "[friends] alice: after the files\n", "bob got: \(bobGot)")

        // big.bin is still pending. A second chat (default limit) whose download stalls after
        // 512 KiB (test hook): the progress stays in the rule, a typed line waits for the end,
        // Ctrl-C leaves at once and keeps the partial file, which recv then resumes.
        tmux.type("clear", enter: true)
        try await tmux.waitUntil("the screen cleared") { !$0.contains("CHAT-EXIT=0") }
        tmux.type("QPQ_TEST_STALL_AFTER_BYTES=524288 '\(try ToolRun.path("qpq"))' chat friends --store alice.store --download-dir dl; "
                  + "echo CHAT2-EXIT=$?", enter: true)
        try await tmux.waitFor("bob: [file 3] big.bin (1.4 MiB) - /get 3 downloads it")
        try await tmux.waitFor("bob: [file 2] rep\\x1b[31mort.bin (683.6 KiB) - saved as dl/rep[31mort (1).bin")
        tmux.type("/get 3", enter: true)
        try await tmux.waitFor("\n-- downloading big.bin 34% (512.0 KiB of 1.4 MiB) ---")
        tmux.type("typed meanwhile", enter: true)
        try await tmux.waitFor("-- (sent when the download of big.bin ends)")
        tmux.key("C-c")
        try await tmux.waitFor("CHAT2-EXIT=0")
        let parts = try FileManager.default.contentsOfDirectory(atPath: dir + "/dl").filter { $0.hasSuffix(".part") }
        #expect(parts.count == 1 && parts.allSatisfy { name in
            ((try? FileManager.default.attributesOfItem(atPath: dir + "/dl/" + name)[.size]) as? UInt64) == 524_288 }, "\(parts)")
        let later = try await s.qpq("alice", ["recv", "--download-dir", dir + "/dl"])
        #expect(later.stdout.contains("saved \(dir)/dl/big.bin") && later.stderr.contains("resumed the download at byte 524288"),
                "\(later.stdout) \(later.stderr)")
        #expect(FileTransferTests.sha(dir + "/dl/big.bin") == bigSha)
        let bobLater = try await s.qpq("bob", ["recv"]).stdout
        #expect(bobLater == "[friends] alice: typed meanwhile\n", "the line typed during the download went out on leaving: \(bobLater)")
        print("chat /get of 700,000 bytes: \(String(format: "%.2f", took)) s from Enter to the saved line")
        #expect(try await s.server.terminate() == 0)
    }
}
