import Foundation
import QSSHSession
import QSSHTestSupport
import Testing

extension ToolSuites {
@Suite("qssh and qsshd")
struct QSSHTests {
    /// Keys and an authorized_keys file in a temp dir; qsshd started on an ephemeral loopback port.
    func start(_ dir: String, extra: [String] = []) throws -> ServeProcess {
        for (t, f) in [("host", "host"), ("user", "id"), ("user", "stranger")] {
            let r = try Tools.run("qssh-keygen", ["-q", "-t", t, "-f", dir + "/" + f, "-N", ""])
            guard r.status == 0 else { throw ToolTestError(r.stderr) }
        }
        try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: dir + "/authorized_keys")
        return try ServeProcess(tool: "qsshd", arguments: ["-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys"] + extra)
    }

    func qssh(_ dir: String, port: Int, identity: String = "id", options: [String] = ["-o", "StrictHostKeyChecking=accept-new"],
              _ command: [String], stdin: Data = Data()) throws -> Tools.Result {
        try Tools.run("qssh", ["-p", "\(port)", "-i", dir + "/" + identity, "--known-hosts", dir + "/known_hosts"] + options + ["127.0.0.1"] + command, stdin: stdin)
    }

    @Test("exec: stdout and stderr apart, the remote exit status becomes qssh's, 16 MiB of stdin arrives intact")
    func exec() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        let r = try qssh(dir, port: server.port, ["printf hi; echo oops >&2; exit 3"])
        #expect(r.status == 3, "\(r.stderr)")
        #expect(String(decoding: r.stdout, as: UTF8.self) == "hi")
        #expect(r.stderr.contains("oops") && !r.stderr.contains("hi"), "\(r.stderr)")
        var blob = Data(count: 16 << 20)
        for i in stride(from: 0, to: blob.count, by: 4096) { blob[i] = UInt8(truncatingIfNeeded: i >> 12 &* 31) }
        let hash = try qssh(dir, port: server.port, options: ["-o", "BatchMode=yes"], ["sha256sum"], stdin: blob)
        #expect(hash.status == 0, "\(hash.stderr)")
        let local = try Tools.run("/usr/bin/sha256sum", [], stdin: blob)
        #expect(String(decoding: hash.stdout, as: UTF8.self) == String(decoding: local.stdout, as: UTF8.self))
        let signaled = try qssh(dir, port: server.port, options: ["-o", "BatchMode=yes"], ["kill -TERM $$"])
        #expect(signaled.status == 255 && signaled.stderr.contains("signal TERM"), "\(signaled.stderr)")
    }

    @Test("refusals: unknown key, unknown host in batch mode, changed host key; nothing runs")
    func refusals() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        let marker = dir + "/ran"
        let stranger = try qssh(dir, port: server.port, identity: "stranger", ["touch " + marker])
        #expect(stranger.status == 255 && stranger.stderr.contains("permission denied"), "\(stranger.stderr)")
        #expect(server.waitForLog("refused root from 127.0.0.1: key SHA256:"), "\(server.log)")
        try? FileManager.default.removeItem(atPath: dir + "/known_hosts")
        let batch = try qssh(dir, port: server.port, options: ["-o", "BatchMode=yes"], ["touch " + marker])
        #expect(batch.status == 255 && batch.stderr.contains("Host key verification failed"), "\(batch.stderr)")
        #expect(try Tools.run("qssh-keygen", ["-q", "-t", "host", "-f", dir + "/other", "-N", ""]).status == 0)
        let other = try String(contentsOfFile: dir + "/other.pub", encoding: .utf8)
        try ("[127.0.0.1]:\(server.port) " + other).write(toFile: dir + "/known_hosts", atomically: true, encoding: .utf8)
        let changed = try qssh(dir, port: server.port, options: [], ["touch " + marker])
        #expect(changed.status == 255 && changed.stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"), "\(changed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker))
        let both = try qssh(dir, port: server.port, options: ["-t", "-T"], ["true"])
        #expect(both.status == 255 && both.stderr.contains("-t and -T contradict"), "\(both.stderr)")
    }

    @Test("--no-root-login (PermitRootLogin no in -f FILE) refuses root's authorized key; PermitRootLogin prohibit-password lets it in")
    func noRootLogin() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let asRoot = getuid() == 0
        try "PermitRootLogin no\n".write(toFile: dir + "/deny.conf", atomically: true, encoding: .utf8)
        let denying = try start(dir, extra: ["-f", dir + "/deny.conf"])
        defer { denying.stop() }
        let marker = dir + "/ran"
        let refused = try qssh(dir, port: denying.port, ["touch " + marker])
        if asRoot {
            #expect(refused.status == 255 && refused.stderr.contains("permission denied"), "\(refused.stderr)")
            #expect(denying.waitForLog("root (uid 0) may not log in (--no-root-login, PermitRootLogin no)"), "\(denying.log)")
            #expect(!FileManager.default.fileExists(atPath: marker))
        } else {
            #expect(refused.status == 0, "not root: the account qsshd runs as is not uid 0 \(refused.stderr)")  // nothing to refuse
        }
        let keysOnly = dir + "/keys"
        try FileManager.default.createDirectory(atPath: keysOnly, withIntermediateDirectories: true)
        try "PermitRootLogin prohibit-password\n".write(toFile: keysOnly + "/ok.conf", atomically: true, encoding: .utf8)
        let allowing = try start(keysOnly, extra: ["-f", keysOnly + "/ok.conf"])
        defer { allowing.stop() }
        let ok = try qssh(keysOnly, port: allowing.port, ["echo in"])
        #expect(ok.status == 0 && String(decoding: ok.stdout, as: UTF8.self) == "in\n", "\(ok.stderr)")
        let both = try Tools.run("qsshd", ["--no-root-login", "--permit-root-password", "-h", dir + "/host"])
        #expect(both.status == 64 && both.stderr.contains("--no-root-login and --permit-root-password contradict"), "\(both.stderr)")
    }

    @Test("40 concurrent sessions with stdin all finish; afterwards qsshd holds no extra fds or children")
    func concurrentSessions() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        let first = try qssh(dir, port: server.port, ["true"])  // records the host key
        #expect(first.status == 0, "\(first.stderr)")
        let pid = server.process.processIdentifier
        let fdsBefore = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
        let results = LockedResults()
        let port = server.port
        DispatchQueue.concurrentPerform(iterations: 40) { i in
            let r = try? qssh(dir, port: port, options: ["-o", "BatchMode=yes"], ["cat"], stdin: Data("session \(i)\n".utf8))
            results.add(i, r.map { $0.status == 0 && String(decoding: $0.stdout, as: UTF8.self) == "session \(i)\n" } ?? false)
        }
        #expect(results.failures.isEmpty, "failed sessions: \(results.failures)")
        // Sessions end asynchronously after the clients exit; wait (bounded) for the server to settle.
        var fdsAfter = 0, children = ""
        for _ in 0..<100 {
            fdsAfter = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
            children = self.children(of: pid)
            if fdsAfter <= fdsBefore && children.trimmingCharacters(in: .whitespaces).isEmpty { break }
            usleep(50_000)
        }
        #expect(fdsAfter <= fdsBefore, "qsshd had \(fdsBefore) fds before and \(fdsAfter) after")
        #expect(children.trimmingCharacters(in: .whitespaces).isEmpty, "children left: \(children)")
    }

    @Test("200 qssh processes started at once against one qsshd all succeed; afterwards no leaked fds or children")
    func twoHundredConnections() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The unauthenticated-connection limits are for hostile clients; this test is about 200 real ones at once.
        let server = try start(dir, extra: ["--max-connections", "300", "--max-startups", "300", "--per-source-max-startups", "none"])
        defer { server.stop() }
        #expect(try qssh(dir, port: server.port, ["true"]).status == 0)  // records the host key
        let pid = server.process.processIdentifier
        let fdsBefore = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
        let argv = [try Tools.path("qssh"), "-p", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts",
                    "-o", "BatchMode=yes", "127.0.0.1", "true"]
        var clients: [ChildProcess] = []
        for _ in 0..<200 {
            let c = try ChildProcess.spawn(argv, environment: ProcessInfo.processInfo.environment, directory: nil)
            close(c.stdin)
            clients.append(c)
        }
        var failures: [String] = []
        for (i, c) in clients.enumerated() {
            let err = readAll(c.stderr)
            close(c.stdout); close(c.stderr)
            if c.waitForExit() != .exited(0) { failures.append("\(i): \(err)") }
        }
        #expect(failures.isEmpty, "\(failures.count) of 200 failed: \(failures.prefix(3))")
        try waitUntil("qsshd is back to its descriptors and has no children") {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? .max) <= fdsBefore && children(of: pid).isEmpty
        }
    }

    @Test("backpressure: 96 MiB sent to a command that does not read yet does not pile up in qsshd's memory")
    func stdinBackpressure() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        #expect(try qssh(dir, port: server.port, ["true"]).status == 0)
        let pid = server.process.processIdentifier
        func rssKB() -> Int {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            let line = text.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        let before = rssKB()
        try Data(count: 96 << 20).write(to: URL(fileURLWithPath: dir + "/zeros"))
        // The remote command reads nothing until the marker file exists.
        let client = try ChildProcess.spawn(
            ["/bin/sh", "-c", "exec '\(try Tools.path("qssh"))' -p \(server.port) -i '\(dir)/id' --known-hosts '\(dir)/known_hosts' 127.0.0.1 'while [ ! -e \(dir)/go ]; do sleep 0.05; done; wc -c' < '\(dir)/zeros'"],
            environment: ProcessInfo.processInfo.environment, directory: nil)
        close(client.stdin)
        // Long enough for the client to have pushed everything it could; the peak is what counts.
        var peak = 0
        for _ in 0..<40 { peak = max(peak, rssKB()); usleep(50_000) }
        #expect(FileManager.default.createFile(atPath: dir + "/go", contents: nil))
        let out = readAll(client.stdout)
        close(client.stdout); close(client.stderr)
        #expect(client.waitForExit() == .exited(0))
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "\(96 << 20)")
        #expect(peak - before < 32 << 10, "qsshd grew by \(peak - before) kB while the command did not read")
    }

    @Test("qsshd -f FILE (command line wins), --daemon with --pid-file and --log-file, SIGTERM; bad files and failed starts are reported")
    func configAndDaemon() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (t, f) in [("host", "host"), ("user", "id")] {
            #expect(try Tools.run("qssh-keygen", ["-q", "-t", t, "-f", dir + "/" + f, "-N", ""]).status == 0)
        }
        try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: dir + "/authorized_keys")
        let config = """
            # qsshd test configuration
            Port 1
            ListenAddress 127.0.0.1
            HostKey \(dir)/host
            AuthorizedKeysFile=\(dir)/authorized_keys
            PermitOpen none
            LogLevel VERBOSE
            """
        try config.write(toFile: dir + "/qsshd.conf", atomically: true, encoding: .utf8)
        let started = try Tools.run("qsshd", ["-f", dir + "/qsshd.conf", "-p", "0", "--daemon", "--pid-file", dir + "/qsshd.pid", "--log-file", dir + "/qsshd.log"])
        #expect(started.status == 0, "\(started.stderr)")
        let pidText = try String(contentsOfFile: dir + "/qsshd.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let pid = try #require(pid_t(pidText))
        #expect(started.stderr.contains("(pid \(pid))"), "\(started.stderr)")
        let range = try #require(started.stderr.range(of: #"listening on 127\.0\.0\.1:(\d+)"#, options: .regularExpression))
        let port = try #require(Int(started.stderr[range].split(separator: ":").last ?? ""))
        #expect(port != 1, "the command line's -p 0 should win over the file's Port 1")
        let ok = try qssh(dir, port: port, ["echo from-daemon"])
        #expect(ok.status == 0 && String(decoding: ok.stdout, as: UTF8.self) == "from-daemon\n", "\(ok.stderr)")
        let refused = try qssh(dir, port: port, options: ["-o", "BatchMode=yes", "-W", "127.0.0.1:\(port)"], [])
        #expect(refused.status == 255, "PermitOpen none from the file was not applied")
        let log = try String(contentsOfFile: dir + "/qsshd.log", encoding: .utf8)
        #expect(log.contains("NOTICE listening on") && log.contains("INFO accepted"), "\(log)")
        kill(pid, SIGTERM)
        try waitUntil("the daemon exits and removes its pid file") { kill(pid, 0) != 0 && !FileManager.default.fileExists(atPath: dir + "/qsshd.pid") }

        try "Port 22222\nBogus yes\n".write(toFile: dir + "/bad.conf", atomically: true, encoding: .utf8)
        let bad = try Tools.run("qsshd", ["-f", dir + "/bad.conf"])
        #expect(bad.status == 1 && bad.stderr.contains("bad.conf:2: unknown keyword 'Bogus'"), "\(bad.stderr)")
        try "GatewayPorts maybe\n".write(toFile: dir + "/bad2.conf", atomically: true, encoding: .utf8)
        let bad2 = try Tools.run("qsshd", ["-f", dir + "/bad2.conf"])
        #expect(bad2.status == 1 && bad2.stderr.contains("must be yes or no"), "\(bad2.stderr)")
        let failed = try Tools.run("qsshd", ["-p", "0", "-l", "127.0.0.1", "-h", dir + "/missing-key", "--daemon", "--pid-file", dir + "/never.pid"])
        #expect(failed.status == 1 && failed.stderr.contains("missing-key"), "\(failed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/never.pid"))
    }

    @Test("--idle-timeout closes a silent connection with the reason; a session that keeps talking is not cut")
    func idleTimeout() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir, extra: ["--idle-timeout", "1"])
        defer { server.stop() }
        let start = Date()
        let silent = try qssh(dir, port: server.port, ["sleep 30"])
        #expect(silent.status == 255 && silent.stderr.contains("idle timeout"), "\(silent.stderr)")
        #expect(Date().timeIntervalSince(start) < 10)
        let talking = try qssh(dir, port: server.port, options: ["-o", "BatchMode=yes"], ["for i in 1 2 3 4 5 6; do echo tick; sleep 0.4; done"])
        #expect(talking.status == 0, "\(talking.stderr)")
        #expect(String(decoding: talking.stdout, as: UTF8.self) == String(repeating: "tick\n", count: 6))
    }

    @Test("HashKnownHosts=yes stores the host name hashed; the hashed entry still pins the key")
    func hashedKnownHosts() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        let first = try qssh(dir, port: server.port, options: ["-o", "StrictHostKeyChecking=accept-new", "-o", "HashKnownHosts=yes"], ["true"])
        #expect(first.status == 0, "\(first.stderr)")
        let text = try String(contentsOfFile: dir + "/known_hosts", encoding: .utf8)
        #expect(text.hasPrefix("|1|") && !text.contains("127.0.0.1"), "\(text)")
        let pinned = try qssh(dir, port: server.port, options: ["-o", "BatchMode=yes"], ["echo pinned"])
        #expect(pinned.status == 0 && String(decoding: pinned.stdout, as: UTF8.self) == "pinned\n", "\(pinned.stderr)")
        server.stop()
        // Same port, another host key: the hashed line is recognised and the change refused.
        #expect(try Tools.run("qssh-keygen", ["-q", "-t", "host", "-f", dir + "/other", "-N", ""]).status == 0)
        let impostor = try ServeProcess(tool: "qsshd", arguments: ["-p", "\(server.port)", "-l", "127.0.0.1", "-h", dir + "/other", "--authorized-keys", dir + "/authorized_keys"])
        defer { impostor.stop() }
        let changed = try qssh(dir, port: server.port, options: ["-o", "BatchMode=yes"], ["touch \(dir)/ran"])
        #expect(changed.status == 255 && changed.stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") && changed.stderr.contains("known_hosts:1"), "\(changed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/ran"))
    }

    @Test("~/.qssh/config style file (-F): Host blocks, first value wins, the command line wins; qssh tunnel and qscp use it; bad files refused")
    func clientConfig() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        let config = """
            # per-host settings
            Host other-alias
                Port 1
            Host myalias !nothing
                HostName 127.0.0.1
                Port \(server.port)
                IdentityFile \(dir)/id
                QNSPKnownHostsFile \(dir)/known_hosts
                StrictHostKeyChecking accept-new
            Host *
                Port 1
                BatchMode yes
            """
        try config.write(toFile: dir + "/config", atomically: true, encoding: .utf8)
        let viaAlias = try Tools.run("qssh", ["-F", dir + "/config", "myalias", "echo via-config"])
        #expect(viaAlias.status == 0 && String(decoding: viaAlias.stdout, as: UTF8.self) == "via-config\n", "\(viaAlias.stderr)")
        let cliWins = try Tools.run("qssh", ["-F", dir + "/config", "-p", "1", "myalias", "true"])
        #expect(cliWins.status == 255 && cliWins.stderr.contains("port 1"), "\(cliWins.stderr)")
        try Data("copied".utf8).write(to: URL(fileURLWithPath: dir + "/src"))
        let copy = try Tools.run("qscp", ["-F", dir + "/config", "-q", dir + "/src", "myalias:" + dir + "/dst"])
        #expect(copy.status == 0 && FileManager.default.contents(atPath: dir + "/dst") == Data("copied".utf8), "\(copy.stderr)")
        let me = try #require(SessionUser.current()?.name)
        let ssh = try Tools.run("/usr/bin/ssh", ["-F", "/dev/null", "-o", "ProxyCommand=\(try Tools.path("qssh")) tunnel -F \(dir)/config %r@%h",
                                                 "-o", "UserKnownHostsFile=\(dir)/ssh_kh", "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes",
                                                 "-l", me, "myalias", "echo tunnel-config"])
        #expect(ssh.status == 0 && String(decoding: ssh.stdout, as: UTF8.self) == "tunnel-config\n", "\(ssh.stderr)")
        try "Host *\n  Colour blue\n".write(toFile: dir + "/bad", atomically: true, encoding: .utf8)
        let bad = try Tools.run("qssh", ["-F", dir + "/bad", "myalias", "true"])
        #expect(bad.status == 255 && bad.stderr.contains("bad:2: unknown keyword 'Colour'"), "\(bad.stderr)")
    }

    @Test("PTY: -t gives a terminal of the default size with TERM; the exit status still comes back")
    func ptyExec() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        let r = try qssh(dir, port: server.port, options: ["-o", "StrictHostKeyChecking=accept-new", "-t"], ["tty; stty size; exit 4"])
        let out = String(decoding: r.stdout, as: UTF8.self)
        #expect(r.status == 4, "\(r.stderr)")
        #expect(out.contains("/dev/pts/") && out.contains("24 80"), "\(out)")
    }

    @Test("interactive PTY session in tmux: prompt, window size and resize, Ctrl-C, exit (over TCP and over QUIC)",
          .enabled(if: TmuxPane.available), arguments: ["tcp", "quic"])
    func interactive(transport: String) throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        if transport == "quic" { #expect(server.waitForLog("QUIC on UDP"), "\(server.log)") }
        #expect(try qssh(dir, port: server.port, options: ["-o", "StrictHostKeyChecking=accept-new", "-o", "Transport=\(transport)"], ["true"]).status == 0)  // pin the host key
        let tmux = TmuxPane(socket: "qssh-test-\(transport)-\(getpid())", scratch: dir)
        defer { tmux.kill() }
        let qsshPath = try Tools.path("qssh")
        try tmux.start(width: 100, height: 30, command:
            "'\(qsshPath)' -p \(server.port) -i '\(dir)/id' --known-hosts '\(dir)/known_hosts' -o Transport=\(transport) 127.0.0.1; echo QSSH-EXIT=$?; sleep 60")
        tmux.type("PS1='READY> '", enter: true)
        try tmux.waitFor("READY> ")
        tmux.type("stty size", enter: true)
        try tmux.waitFor("30 100")
        tmux.resize(width: 120, height: 40)
        // The new size travels as a window-change request: ask until the shell sees it (bounded).
        for attempt in 0..<10 {
            tmux.type("stty size", enter: true)
            if (try? tmux.waitFor("40 120", attempts: 20)) != nil { break }
            if attempt == 9 { try tmux.waitFor("40 120") }
        }
        // Ctrl-C only once the command runs: sent earlier, the terminal would flush the typed line with it.
        tmux.type("echo sleeping-$((2*3)); sleep 100", enter: true)
        try tmux.waitFor("sleeping-6")
        tmux.key("C-c")
        try tmux.waitFor("READY>", after: "sleeping-6")  // capture-pane drops the trailing space
        tmux.type("echo after-$((6*7))", enter: true)
        try tmux.waitFor("after-42")
        tmux.type("exit 5", enter: true)
        try tmux.waitFor("QSSH-EXIT=5")

        // The escape: Enter, then ~. ends the session from the client side.
        let second = TmuxPane(socket: "qssh-test-escape-\(transport)-\(getpid())", scratch: dir)
        defer { second.kill() }
        try second.start(width: 100, height: 30, command:
            "'\(qsshPath)' -p \(server.port) -i '\(dir)/id' --known-hosts '\(dir)/known_hosts' -o Transport=\(transport) 127.0.0.1; echo QSSH-EXIT=$?; sleep 60")
        second.type("PS1='READY> '", enter: true)
        try second.waitFor("READY> ")
        second.key("Enter")
        second.type("~.", enter: false)
        try second.waitFor("QSSH-EXIT=255")
        #expect(second.pane().contains("closed (~.)"))
    }


    @Test("a session's processes inherit no descriptors beyond stdin, stdout and stderr")
    func noInheritedDescriptors() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        for tty in [false, true] {
            let r = try qssh(dir, port: server.port, options: ["-o", "StrictHostKeyChecking=accept-new"] + (tty ? ["-t"] : []),
                             ["ls -l /proc/$$/fd; true"])  // '; true': the shell's own descriptors, not ls's
            let lines = String(decoding: r.stdout, as: UTF8.self).split(whereSeparator: \.isNewline).filter { $0.contains(" -> ") }
            #expect(r.status == 0 && lines.count == 3, "tty \(tty): \(lines)")
            #expect(!lines.contains { $0.contains("socket:") || $0.contains("anon_inode") })
        }
    }

    /// Starts `qssh ... 'sleep 77'` with posix_spawn and waits until qsshd has started the command.
    func startSleeper(_ dir: String, server: ServeProcess, options: [String] = []) throws -> ChildProcess {
        let client = try ChildProcess.spawn(
            [try Tools.path("qssh"), "-p", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts",
             "-o", "StrictHostKeyChecking=accept-new"] + options + ["127.0.0.1", "sleep 77"],
            environment: ProcessInfo.processInfo.environment, directory: nil)
        try waitUntil("qsshd started the command") { !children(of: server.process.processIdentifier).isEmpty }
        return client
    }

    /// Child pids of `pid`, from every thread (sessions are started on event-loop threads).
    func children(of pid: Int32) -> String {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap { try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/children", encoding: .utf8) }
            .joined(separator: " ").trimmingCharacters(in: .whitespaces)
    }

    /// Polls `condition` every 20 ms for at most 10 s.
    func waitUntil(_ what: String, _ condition: () -> Bool) throws {
        for _ in 0..<500 {
            if condition() { return }
            usleep(20_000)
        }
        throw ToolTestError("timed out waiting until \(what)")
    }

    @Test("killing the client mid-session leaves no process behind on the server")
    func clientKilled() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        let client = try startSleeper(dir, server: server)
        kill(client.pid, SIGKILL)
        _ = client.waitForExit()
        for fd in [client.stdin, client.stdout, client.stderr] { close(fd) }
        try waitUntil("the session's process is gone") { children(of: server.process.processIdentifier).isEmpty }
    }

    @Test("killing the server gives the client a clear error at once")
    func serverKilled() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        let client = try startSleeper(dir, server: server)
        let orphan = children(of: server.process.processIdentifier)
        defer { if let pid = Int32(orphan.split(separator: " ").first ?? "") { kill(pid, SIGKILL) } }
        let started = Date()
        kill(server.process.processIdentifier, SIGKILL)
        close(client.stdin)
        let status = client.waitForExit()
        let text = readAll(client.stderr)
        for fd in [client.stdout, client.stderr] { close(fd) }
        #expect(status == .exited(255))
        #expect(text.contains("connection to 127.0.0.1 lost"), "\(text)")
        #expect(Date().timeIntervalSince(started) < 10, "the client noticed only after \(Date().timeIntervalSince(started)) s")
    }


    @Test("a frozen server (SIGSTOP) is detected by qssh's keepalive within the configured bound")
    func frozenServer() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { kill(server.process.processIdentifier, SIGCONT); server.stop() }
        let client = try startSleeper(dir, server: server, options: ["-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2"])
        let orphan = children(of: server.process.processIdentifier)
        defer { if let pid = Int32(orphan.split(separator: " ").first ?? "") { kill(pid, SIGKILL) } }
        let started = Date()
        kill(server.process.processIdentifier, SIGSTOP)
        close(client.stdin)
        let status = client.waitForExit()
        let err = readAll(client.stderr)
        for fd in [client.stdout, client.stderr] { close(fd) }
        let elapsed = Date().timeIntervalSince(started)
        #expect(status == .exited(255))
        #expect(err.contains("keepalive timeout"), "\(err)")
        #expect(elapsed >= 1 && elapsed < 6, "detected after \(elapsed) s")
    }

    @Test("--max-connections: a connection over the limit is refused; a slot frees when a session ends")
    func connectionLimit() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir, extra: ["--max-connections", "1"])
        defer { server.stop() }
        let holder = try startSleeper(dir, server: server)
        let refused = try qssh(dir, port: server.port, options: ["-o", "BatchMode=yes"], ["echo should-not-run"])
        #expect(refused.status == 255 && !String(decoding: refused.stdout, as: UTF8.self).contains("should-not-run"), "\(refused.stderr)")
        #expect(refused.stderr.contains("server busy: 1 sessions already open"), "\(refused.stderr)")
        kill(holder.pid, SIGKILL)
        _ = holder.waitForExit()
        for fd in [holder.stdin, holder.stdout, holder.stderr] { close(fd) }
        try waitUntil("the first session is gone") { children(of: server.process.processIdentifier).isEmpty }
        var again = try qssh(dir, port: server.port, options: ["-o", "BatchMode=yes"], ["echo ok"])
        for _ in 0..<100 where again.status != 0 {  // the slot frees when qsshd sees the close
            usleep(20_000)
            again = try qssh(dir, port: server.port, options: ["-o", "BatchMode=yes"], ["echo ok"])
        }
        #expect(again.status == 0 && String(decoding: again.stdout, as: UTF8.self) == "ok\n", "\(again.stderr)")
    }


    @Test("audit log: connect, auth success/failure, exec, disconnect as chained JSON lines; edits and removals are detected")
    func auditLog() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = dir + "/audit.jsonl"
        let server = try start(dir, extra: ["--audit-log", log])
        #expect(try qssh(dir, port: server.port, ["true"]).status == 0)
        #expect(try qssh(dir, port: server.port, identity: "stranger", options: ["-o", "BatchMode=yes"], ["true"]).status == 255)
        // qsshd records a disconnect when it sees the close, which may come just after the client exits.
        func readLines() -> [String] { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
        try waitUntil("eight audit records") { readLines().count >= 8 }
        server.stop()  // SIGTERM: qsshd signs a last checkpoint before it exits
        try waitUntil("the closing checkpoint") { readLines().last?.contains("\"event\":\"checkpoint\"") == true }
        let lines = readLines()
        let events = lines.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["event"] as? String
        }
        #expect(Array(events.prefix(4)) == ["segment-start", "connect", "auth-success", "exec"], "\(events)")
        #expect(events.last == "checkpoint")
        #expect(events.dropFirst().dropLast().sorted() == ["auth-failure", "auth-success", "connect", "connect", "disconnect", "disconnect", "exec"], "\(events)")
        #expect(lines[3].contains("\"detail\":\"exec: true\""), "\(lines[3])")
        #expect(try mode(log) & 0o077 == 0)
        #expect(try mode(log + ".key") & 0o077 == 0)
        let verify = ["--verify-audit", log, "-h", dir + "/host"]
        let ok = try Tools.run("qsshd", verify)
        #expect(ok.status == 0 && String(decoding: ok.stdout, as: UTF8.self).contains("records, hash chain intact"), "\(ok.stderr)")
        #expect(String(decoding: ok.stdout, as: UTF8.self).contains("1 signed checkpoints"), "\(String(decoding: ok.stdout, as: UTF8.self))")
        // Edit one field of the exec record.
        var edited = lines
        edited[3] = edited[3].replacingOccurrences(of: "exec: true", with: "exec: rm")
        try (edited.joined(separator: "\n") + "\n").write(toFile: log, atomically: true, encoding: .utf8)
        let bad = try Tools.run("qsshd", verify)
        #expect(bad.status != 0 && bad.stderr.contains("line 4 does not match the hash chain"), "\(bad.stderr)")
        // Remove line 2.
        var removed = lines
        removed.remove(at: 1)
        try (removed.joined(separator: "\n") + "\n").write(toFile: log, atomically: true, encoding: .utf8)
        let gap = try Tools.run("qsshd", verify)
        #expect(gap.status != 0 && gap.stderr.contains("line 2"), "\(gap.stderr)")
    }

    @Test("as root, qsshd logs a user in to their own account, with their own keys and a terminal they own",
          .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/useradd")))
    func otherAccount() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let name = "qsst\(getpid() % 100000)"
        let home = dir + "/home-" + name
        let add = try Tools.run("/usr/sbin/useradd", ["-m", "-d", home, "-s", "/bin/sh", name])
        #expect(add.status == 0, "\(add.stderr)")
        defer { _ = try? Tools.run("/usr/sbin/userdel", ["-r", name]) }
        for (t, f) in [("host", "host"), ("user", "id"), ("user", "stranger")] {
            #expect(try Tools.run("qssh-keygen", ["-q", "-t", t, "-f", dir + "/" + f, "-N", ""]).status == 0)
        }
        // The user's own ~/.qssh/authorized_keys, owned by the user.
        let keysDir = home + "/.qssh"
        try FileManager.default.createDirectory(atPath: keysDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: keysDir + "/authorized_keys")
        #expect(try Tools.run("/bin/chown", ["-R", "\(name):\(name)", keysDir]).status == 0)
        chmod(dir, 0o755)
        let server = try ServeProcess(tool: "qsshd", arguments: ["-p", "0", "-l", "127.0.0.1", "-h", dir + "/host"])
        defer { server.stop() }
        let base = ["-p", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts", "-o", "StrictHostKeyChecking=accept-new"]
        let r = try Tools.run("qssh", base + ["-l", name, "127.0.0.1", "id -un; pwd; echo $HOME; id -u"])
        let out = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(out.count == 4 && out[0] == name && out[1] == home && out[2] == home && out[3] != "0", "\(out)")
        let tty = try Tools.run("qssh", base + ["-t", "-l", name, "127.0.0.1", "stat -c %U $(tty)"])
        #expect(String(decoding: tty.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == name, "\(tty.stderr)")
        // The same key is not root's, and a stranger's key is not the user's.
        let asRoot = try Tools.run("qssh", base + ["-l", "root", "127.0.0.1", "true"])
        #expect(asRoot.status == 255)
        let stranger = try Tools.run("qssh", ["-p", "\(server.port)", "-i", dir + "/stranger", "--known-hosts", dir + "/known_hosts",
                                             "-l", name, "127.0.0.1", "true"])
        #expect(stranger.status == 255 && stranger.stderr.contains("permission denied"), "\(stranger.stderr)")
        // A keys file others can write is refused (the client is told only "permission denied"; the reason is logged).
        chmod(keysDir + "/authorized_keys", 0o666)
        let unsafe = try Tools.run("qssh", base + ["-l", name, "127.0.0.1", "true"])
        #expect(unsafe.status == 255 && unsafe.stderr.contains("permission denied") && !unsafe.stderr.contains(keysDir), "\(unsafe.stderr)")
        #expect(server.waitForLog("authorized_keys is writable by group or others"), "\(server.log)")
    }

}
}

final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var failed: [Int] = []
    func add(_ i: Int, _ ok: Bool) { lock.lock(); if !ok { failed.append(i) }; lock.unlock() }
    var failures: [Int] { lock.lock(); defer { lock.unlock() }; return failed.sorted() }
}

/// Reads a descriptor to its end.
func readAll(_ fd: CInt) -> String { BlockingIO.readText(fd) }

