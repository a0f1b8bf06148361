import Crypto
import Foundation
import NIOConcurrencyHelpers
import QNSPCrypto
import Testing

/// qpq/1 over QUIC (ALPN qpq/1, docs/messaging.md §1.1) with real qpqd and qpq processes on 127.0.0.1.
@Suite("qpq over QUIC against a real qpqd (processes on 127.0.0.1)", .serialized)
struct QUICCarrierTests {
    struct Server {
        let dir: TempDir
        let server: QPQDProcess
        let common: [String]

        /// Runs qpq as `who`; `ok` says whether it must exit 0.
        @discardableResult
        func qpq(_ who: String, _ args: [String], ok: Bool = true) async throws -> ToolRun.Result {
            let r = try await ToolRun.run("qpq", args + ["--store", dir.path + "/\(who).store"] + common,
                                          environment: ["QPQ_PASSWORD": "password of \(who)"])
            if ok { #expect(r.status == 0, "qpq \(args) as \(who): \(r.stderr)") }
            #expect(!r.stderr.contains("Cannot schedule"), "qpq \(args) as \(who): \(r.stderr)")
            return r
        }
    }

    static func start(_ extra: [String]) async throws -> Server {
        let dir = TempDir()
        let host = try HostKeyPair.generate(comment: "quic test")
        try KeyFileIO.writePrivateKey(try PrivateKeyFile.encode(.host(host)), path: dir.path + "/host_key")
        try KeyFileIO.writePublicKey(PublicKeyLine.host(host.publicKey, comment: "qpqd").text + "\n", path: dir.path + "/host_key.pub")
        let server = try QPQDProcess(arguments: ["-p", "0", "-h", dir.path + "/host_key", "--database", dir.path + "/db.sqlite",
                                                 "--opaque-setup", dir.path + "/opaque"] + extra)
        let port = try await server.waitForPort()
        return Server(dir: dir, server: server, common: ["--server", "127.0.0.1:\(port)", "--host-key", dir.path + "/host_key.pub"])
    }

    @Test("over QUIC: register, login, group, send, recv, recv --watch gets a push, send-file hash checked", .timeLimit(.minutes(5)))
    func everythingOverQUIC() async throws {
        let s = try await Self.start([])
        defer { s.dir.cleanup() }
        #expect(s.server.stderrText.contains("qpqd: QUIC on UDP 127.0.0.1:"), "\(s.server.stderrText)")
        let quic = ["--transport", "quic", "-v"]
        for who in ["alice", "bob"] {
            let reg = try await s.qpq(who, ["register", who] + quic)
            #expect(reg.stdout.contains("registered \(who)"))
            #expect(reg.stderr.contains("over QUIC (UDP, ALPN qpq/1)"), "\(reg.stderr)")
            #expect(try await s.qpq(who, ["login", who] + quic).stdout.contains("logged in as \(who)"))
        }
        try await s.qpq("alice", ["group", "create", "friends"] + quic)
        #expect(try await s.qpq("alice", ["group", "add", "friends", "bob"] + quic).stdout.contains("added bob to friends (epoch 1)"))
        try await s.qpq("alice", ["send", "friends", "hello over quic"] + quic)
        let got = try await s.qpq("bob", ["recv"] + quic)
        #expect(got.stdout == "[friends] alice: hello over quic\n")
        #expect(got.stderr.contains("over QUIC"), "\(got.stderr)")

        // recv --watch over QUIC: the message arrives as a push on the QUIC stream.
        let watch = Process()
        watch.executableURL = URL(fileURLWithPath: try ToolRun.path("qpq"))
        watch.arguments = ["recv", "--watch", "--store", s.dir.path + "/bob.store"] + quic
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
        let subscribed = await waitFor { seenErr.withLockedValue { $0.contains("qpq: watching") } }
        #expect(subscribed, "watcher stderr: \(seenErr.withLockedValue { $0 })")
        #expect(seenErr.withLockedValue { $0 }.contains("over QUIC"))
        try await s.qpq("alice", ["send", "friends", "live over quic"] + quic)
        let pushed = await waitFor { seen.withLockedValue { $0.contains("[friends] alice: live over quic\n") } }
        kill(watch.processIdentifier, SIGTERM)
        #expect(pushed, "watch printed: \(seen.withLockedValue { $0 }); stderr: \(seenErr.withLockedValue { $0 })")
        watch.waitUntilExit()

        // A file (3 MiB: several 1 MiB pieces) over QUIC, hash checked on the other side.
        let path = s.dir.path + "/photo.bin"
        let hash = try FileTransferTests.randomFile(path, size: 3 * 1024 * 1024 + 17, seed: 14)
        try await s.qpq("alice", ["send-file", "friends", path] + quic)
        let recv = try await s.qpq("bob", ["recv", "--download-dir", s.dir.path + "/bob-files"] + quic)
        let saved = s.dir.path + "/bob-files/photo.bin"
        #expect(recv.stdout.contains("saved "), "\(recv.stdout) \(recv.stderr)")
        #expect(FileTransferTests.sha(saved) == hash, "\(recv.stdout) \(recv.stderr)")
        #expect(try await s.server.terminate() == 0)
    }

    @Test("qpqd --no-quic: --transport quic fails with a clear error, auto falls back to TCP, tcp works", .timeLimit(.minutes(3)))
    func noQUICServer() async throws {
        let s = try await Self.start(["--no-quic"])
        defer { s.dir.cleanup() }
        #expect(!s.server.stderrText.contains("QUIC on UDP"))
        let quic = try await s.qpq("alice", ["register", "alice", "--transport", "quic"], ok: false)
        #expect(quic.status != 0)
        #expect(quic.stderr.contains("over QUIC (UDP, ALPN qpq/1)"), "\(quic.stderr)")
        let started = Date()
        let auto = try await s.qpq("alice", ["register", "alice", "--transport", "auto", "-v"])
        #expect(auto.stdout.contains("registered alice"))
        #expect(auto.stderr.contains("over TCP (QUIC did not answer)"), "\(auto.stderr)")
        // The fallback waits for the QUIC deadline (1.5 s), not for a long timeout.
        #expect(Date().timeIntervalSince(started) < 15)
        #expect(try await s.qpq("alice", ["login", "alice", "--transport", "tcp"]).stdout.contains("logged in as alice"))
        let bad = try await s.qpq("alice", ["devices", "--transport", "udp"], ok: false)
        #expect(bad.status != 0 && bad.stderr.contains("--transport is tcp, quic or auto"), "\(bad.stderr)")
        #expect(try await s.server.terminate() == 0)
    }
}
