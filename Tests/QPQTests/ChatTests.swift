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
}
