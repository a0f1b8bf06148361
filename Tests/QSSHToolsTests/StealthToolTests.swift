import Foundation
import QNSP
import Testing

extension ToolSuites {
@Suite("stealth mode in the tools")
struct StealthToolTests {
    func keys(_ dir: String) throws {
        for (t, f) in [("host", "host"), ("user", "id")] {
            let r = try Tools.run("qssh-keygen", ["-q", "-t", t, "-f", dir + "/" + f, "-N", ""])
            guard r.status == 0 else { throw ToolTestError(r.stderr) }
        }
        try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: dir + "/authorized_keys")
    }

    func stealthLine(_ dir: String, key: String = "host") throws -> String {
        let r = try Tools.run("qssh-keygen", ["--stealth-line", "-f", dir + "/" + key])
        guard r.status == 0 else { throw ToolTestError(r.stderr) }
        return String(decoding: r.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("qssh-keygen --stealth-line: a parseable line, the same each time for one host key, different for another; refused for a user key")
    func keygenLine() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        #expect(try Tools.run("qssh-keygen", ["-q", "-t", "host", "-f", dir + "/other", "-N", ""]).status == 0)
        let a = try stealthLine(dir), b = try stealthLine(dir), c = try stealthLine(dir, key: "other")
        #expect(a == b && a != c)
        #expect(a.hasPrefix("qnsp-stealth1 "))
        _ = try StealthLine(parsing: a)
        let user = try Tools.run("qssh-keygen", ["--stealth-line", "-f", dir + "/id"])
        #expect(user.status != 0 && user.stderr.contains("not a host key"), "\(user.stderr)")
    }

    @Test("qsshd --stealth: qssh exec with --stealth LINE, a file, -o Stealth=, the config keyword and a known_hosts line; exit status and stdin hash come through", .timeLimit(.minutes(2)))
    func execOverStealth() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let line = try stealthLine(dir)
        try (line + "\n").write(toFile: dir + "/stealth", atomically: true, encoding: .utf8)
        let server = try ServeProcess(tool: "qsshd", arguments: [
            "-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys", "--stealth",
        ])
        defer { server.stop() }
        func qssh(_ extra: [String], _ command: [String], stdin: Data = Data()) throws -> Tools.Result {
            try Tools.run("qssh", ["-p", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts",
                                   "-o", "StrictHostKeyChecking=accept-new"] + extra + ["127.0.0.1"] + command, stdin: stdin)
        }
        let r = try qssh(["--stealth", line], ["printf hi; exit 3"])
        #expect(r.status == 3 && String(decoding: r.stdout, as: UTF8.self) == "hi", "\(r.stderr)")
        var blob = Data(count: 4 << 20)
        for i in stride(from: 0, to: blob.count, by: 512) { blob[i] = UInt8(truncatingIfNeeded: i >> 9 &* 17) }
        let hash = try qssh(["--stealth", dir + "/stealth"], ["sha256sum"], stdin: blob)
        let local = try Tools.run("/usr/bin/sha256sum", [], stdin: blob)
        #expect(hash.status == 0 && hash.stdout == local.stdout, "\(hash.stderr)")
        let viaOption = try qssh(["-o", "Stealth=\(line)"], ["echo option"])
        #expect(viaOption.status == 0 && String(decoding: viaOption.stdout, as: UTF8.self) == "option\n", "\(viaOption.stderr)")
        try "Host 127.0.0.1\n  Stealth \(line)\n".write(toFile: dir + "/config", atomically: true, encoding: .utf8)
        let viaConfig = try qssh(["-F", dir + "/config"], ["echo config"])
        #expect(viaConfig.status == 0 && String(decoding: viaConfig.stdout, as: UTF8.self) == "config\n", "\(viaConfig.stderr)")
        // The line kept in known_hosts beside the host key: no option needed.
        let known = try String(contentsOfFile: dir + "/known_hosts", encoding: .utf8)
        try (known + "[127.0.0.1]:\(server.port) \(line)\n").write(toFile: dir + "/known_hosts", atomically: true, encoding: .utf8)
        let viaKnownHosts = try qssh([], ["echo known_hosts"])
        #expect(viaKnownHosts.status == 0 && String(decoding: viaKnownHosts.stdout, as: UTF8.self) == "known_hosts\n", "\(viaKnownHosts.stderr)")
        let badLine = try qssh(["--stealth", "qnsp-stealth1 nope"], ["true"])
        #expect(badLine.status == 255 && badLine.stderr.contains("malformed stealth line"), "\(badLine.stderr)")
    }

    @Test("over stealth: a PTY session (-t), a -W forward to an echo server, and a 100 MiB qscp with the hash checked", .timeLimit(.minutes(3)))
    func sessionsOverStealth() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let line = try stealthLine(dir)
        let server = try ServeProcess(tool: "qsshd", arguments: [
            "-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys", "--stealth",
        ])
        defer { server.stop() }
        let common = ["-i", dir + "/id", "--known-hosts", dir + "/known_hosts", "-o", "StrictHostKeyChecking=accept-new", "--stealth", line]
        let pty = try Tools.run("qssh", ["-p", "\(server.port)"] + common + ["-t", "127.0.0.1", "tty; echo $TERM"])
        let ptyOut = String(decoding: pty.stdout, as: UTF8.self)
        #expect(pty.status == 0 && ptyOut.contains("/dev/pts/"), "\(ptyOut) \(pty.stderr)")
        let echo = try EchoServer()
        defer { echo.stop() }
        let forward = try Tools.run("qssh", ["-p", "\(server.port)"] + common + ["-W", "127.0.0.1:\(echo.port)", "127.0.0.1"],
                                    stdin: Data("through -W over stealth\n".utf8))
        #expect(forward.status == 0 && String(decoding: forward.stdout, as: UTF8.self) == "through -W over stealth\n", "\(forward.stderr)")
        let big = dir + "/big"
        #expect(try Tools.run("/bin/sh", ["-c", "head -c 104857600 /dev/urandom > '\(big)'"]).status == 0)
        let copy = try Tools.run("qscp", ["-P", "\(server.port)"] + common + ["-q", big, "127.0.0.1:" + dir + "/copy"])
        #expect(copy.status == 0, "\(copy.stderr)")
        let sums = try Tools.run("/usr/bin/sha256sum", [big, dir + "/copy"])
        let hashes = String(decoding: sums.stdout, as: UTF8.self).split(separator: "\n").map { $0.split(separator: " ").first ?? "" }
        #expect(hashes.count == 2 && hashes[0] == hashes[1], "\(hashes)")
    }

    @Test("qsshd --stealth --login-grace-time 2: probes (random bytes, a default-mode client) get no byte and are closed at random times within the grace time", .timeLimit(.minutes(3)))
    func qsshdProbes() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let server = try ServeProcess(tool: "qsshd", arguments: [
            "-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys", "--stealth", "--login-grace-time", "2",
        ])
        defer { server.stop() }
        var times: [Double] = []
        for n in [1, 700, 5000, 40, 2000, 3] {
            let fd = try #require(TCP.connect(server.port))
            let start = Date()
            #expect(TCP.writeAll(fd, (0..<n).map { _ in UInt8.random(in: 0...255) }))
            let answer = TCP.readToEnd(fd)
            let waited = Date().timeIntervalSince(start)
            close(fd)
            #expect(answer.isEmpty, "\(n) random bytes got \(answer.count) bytes back")
            #expect(waited < 2.5, "closed after \(waited) s")
            times.append(waited)
        }
        // Closed at random deadlines (0.5-2 s here), not all at the fixed grace time.
        #expect((times.max() ?? 0) - (times.min() ?? 0) > 0.1, "close times \(times)")
        // A client without the line (default mode) is a probe too.
        let plain = try Tools.run("qssh", ["-p", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts",
                                           "-o", "StrictHostKeyChecking=accept-new", "127.0.0.1", "true"])
        #expect(plain.status == 255, "\(plain.stderr)")
    }

    @Test("--mimic: qsshd --stealth --mimic serves qssh --stealth --mimic (and -o Mimic=yes); qnsp serve/connect --mimic echo; --mimic without --stealth is refused", .timeLimit(.minutes(2)))
    func mimic() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let line = try stealthLine(dir)
        let server = try ServeProcess(tool: "qsshd", arguments: [
            "-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys", "--stealth", "--mimic",
        ])
        defer { server.stop() }
        let common = ["-p", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts", "-o", "StrictHostKeyChecking=accept-new", "--stealth", line]
        let r = try Tools.run("qssh", common + ["--mimic", "127.0.0.1", "echo mimic"])
        #expect(r.status == 0 && String(decoding: r.stdout, as: UTF8.self) == "mimic\n", "\(r.stderr)")
        let o = try Tools.run("qssh", common + ["-o", "Mimic=yes", "127.0.0.1", "echo option"])
        #expect(o.status == 0 && String(decoding: o.stdout, as: UTF8.self) == "option\n", "\(o.stderr)")
        let echoServer = try ServeProcess(dir: dir, extra: ["--echo", "--stealth", "--mimic"])
        defer { echoServer.stop() }
        let echo = try Tools.run("qnsp", ["connect", "-p", "\(echoServer.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts2", "--accept-new",
                                          "--stealth", line, "--mimic", "127.0.0.1"], stdin: Data("mimicked\n".utf8))
        #expect(echo.status == 0 && String(decoding: echo.stdout, as: UTF8.self) == "mimicked\n", "\(echo.stderr)")
        let alone = try Tools.run("qssh", ["-p", "\(server.port)", "--mimic", "127.0.0.1", "true"])
        #expect(alone.status == 255 && alone.stderr.contains("--mimic needs --stealth"), "\(alone.stderr)")
    }

    @Test("--padding: qssh exec with constant and random cover traffic against qsshd --padding random, over stealth, hash checked; bad modes refused", .timeLimit(.minutes(2)))
    func execWithPadding() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let line = try stealthLine(dir)
        let server = try ServeProcess(tool: "qsshd", arguments: [
            "-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys", "--stealth", "--padding", "random",
        ])
        defer { server.stop() }
        var blob = Data(count: 1 << 20)
        for i in stride(from: 0, to: blob.count, by: 256) { blob[i] = UInt8(truncatingIfNeeded: i >> 8 &* 13) }
        let local = try Tools.run("/usr/bin/sha256sum", [], stdin: blob)
        for mode in ["constant", "random", "off"] {
            let r = try Tools.run("qssh", ["-p", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts",
                                           "-o", "StrictHostKeyChecking=accept-new", "--stealth", line, "--padding", mode, "127.0.0.1", "sha256sum"], stdin: blob)
            #expect(r.status == 0 && r.stdout == local.stdout, "\(mode): \(r.stderr)")
        }
        let bad = try Tools.run("qssh", ["-p", "\(server.port)", "--padding", "loud", "127.0.0.1", "true"])
        #expect(bad.status == 255 && bad.stderr.contains("expected off, random or constant"), "\(bad.stderr)")
    }

    @Test("qnsp serve --stealth / qnsp connect --stealth echo; a client without the line gets silence and the no-answer message", .timeLimit(.minutes(2)))
    func qnspOverStealth() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let line = try stealthLine(dir)
        let server = try ServeProcess(dir: dir, extra: ["--echo", "--stealth"])
        defer { server.stop() }
        let base = ["connect", "-p", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts", "--accept-new"]
        let echo = try Tools.run("qnsp", base + ["--stealth", line, "127.0.0.1"], stdin: Data("through stealth\n".utf8))
        #expect(echo.status == 0 && String(decoding: echo.stdout, as: UTF8.self) == "through stealth\n", "\(echo.stderr)")
        // A wrong line: the server never answers and closes after its random deadline (5-30 s).
        let wrong = "qnsp-stealth1 " + Data(repeating: 7, count: 32).base64EncodedString()
        let start = Date()
        let silent = try Tools.run("qnsp", base + ["--stealth", wrong, "127.0.0.1"], stdin: Data("x".utf8))
        let waited = Date().timeIntervalSince(start)
        #expect(silent.status != 0 && silent.stdout.isEmpty, "\(silent.stderr)")
        #expect(silent.stderr.contains("no answer from the stealth server"), "\(silent.stderr)")
        #expect(waited > 4.5, "closed after \(waited) s, before the shortest deadline")
    }
}
}
