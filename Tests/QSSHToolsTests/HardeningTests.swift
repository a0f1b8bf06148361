import Foundation
import NIOConcurrencyHelpers
import QNSP
import QNSPCrypto
import QSSHSession
import Testing

/// Blocking sockets with a chosen source address (the whole of 127.0.0.0/8 is this machine).
enum SourceSocket {
    /// Connects from `source` to 127.0.0.1:`port`; nil when the connect fails.
    static func connect(from source: String, to port: Int) -> CInt? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Reads what arrives within `seconds` (or until EOF); nil on timeout with nothing read.
    static func readSome(_ fd: CInt, max: Int, seconds: Double) -> [UInt8]? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, Int32(seconds * 1000)) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        return n < 0 ? nil : Array(buffer.prefix(n))
    }
}

/// Runs a tool with a time limit; a tool still running at the deadline is killed (and reported).
func runBounded(_ name: String, _ args: [String], seconds: Double) throws -> (result: Tools.Result, timedOut: Bool, elapsed: Double) {
    let start = Date()
    let killed = NIOLockedValueBox(false)
    let done = NIOLockedValueBox(false)
    let watchdog = Thread {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if done.withLockedValue({ $0 }) { return }
            usleep(20_000)
        }
        killed.withLockedValue { $0 = true }
        // Kill every process of this tool started with these arguments.
        _ = try? Tools.run("/usr/bin/pkill", ["-KILL", "-f", ([name] + args).joined(separator: " ")])
    }
    watchdog.start()
    let result = try Tools.run(name, args)
    done.withLockedValue { $0 = true }
    return (result, killed.withLockedValue { $0 }, Date().timeIntervalSince(start))
}

extension ToolSuites {
@Suite("qsshd hardening: hostile clients and local users")
struct HardeningTests {
    /// Host, user and stranger keys in `dir`; the user key authorized in dir/authorized_keys.
    func keys(_ dir: String) throws {
        for (t, f) in [("host", "host"), ("user", "id"), ("user", "stranger")] {
            let r = try Tools.run("qssh-keygen", ["-q", "-t", t, "-f", dir + "/" + f, "-N", ""])
            guard r.status == 0 else { throw ToolTestError(r.stderr) }
        }
        try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: dir + "/authorized_keys")
    }

    func start(_ dir: String, _ extra: [String] = []) throws -> ServeProcess {
        try ServeProcess(tool: "qsshd", arguments: ["-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "-v"]
                         + (extra.contains("--authorized-keys") ? [] : ["--authorized-keys", dir + "/authorized_keys"]) + extra)
    }

    /// qssh's arguments: options, the host, then the command.
    func client(
        _ dir: String, _ server: ServeProcess, identity: String = "id", user: String? = nil, options: [String] = [], _ command: [String]
    ) -> [String] {
        ["-p", "\(server.port)", "-i", dir + "/" + identity, "--known-hosts", dir + "/known_hosts", "-o", "StrictHostKeyChecking=accept-new",
         "-o", "BatchMode=yes"] + (user.map { ["-l", $0] } ?? []) + options + ["127.0.0.1"] + command
    }

    /// A throwaway account (root only) whose home is under `dir`.
    func makeAccount(_ dir: String, _ tag: String) throws -> (name: String, home: String) {
        let name = "qs\(tag)\(getpid() % 100000)"
        let home = dir + "/home-" + name
        let add = try Tools.run("/usr/sbin/useradd", ["-m", "-d", home, "-s", "/bin/sh", name])
        guard add.status == 0 else { throw ToolTestError(add.stderr) }
        return (name, home)
    }

    static let rootWithUseradd = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/useradd")

    // MARK: 1. A FIFO as authorized_keys

    @Test("a FIFO as a user's authorized_keys is refused at once and the server keeps serving everyone",
          .enabled(if: HardeningTests.rootWithUseradd))
    func fifoKeysFile() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let other = try makeAccount(dir, "f")
        defer { _ = try? Tools.run("/usr/sbin/userdel", ["-r", other.name]) }
        chmod(dir, 0o755)
        // root's keys are a FIFO nobody writes to; the other account has a normal file.
        #expect(mkfifo(dir + "/keys-root", 0o600) == 0)
        try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: dir + "/keys-" + other.name)
        let server = try start(dir, ["--authorized-keys", dir + "/keys-%u"])
        defer { server.stop() }
        let fifo = try runBounded("qssh", client(dir, server, user: "root", ["true"]), seconds: 20)
        #expect(!fifo.timedOut, "the login naming the FIFO hung (the server blocked)")
        #expect(fifo.result.status == 255 && fifo.result.stderr.contains("permission denied"), "\(fifo.result.stderr)")
        #expect(server.waitForLog("keys-root is not a regular file"), "\(server.log)")
        // Every event loop still serves: several logins in a row all succeed.
        for i in 0..<4 {
            let ok = try runBounded("qssh", client(dir, server, user: other.name, ["echo ok\(i)"]), seconds: 20)
            #expect(!ok.timedOut && ok.result.status == 0 && String(decoding: ok.result.stdout, as: UTF8.self) == "ok\(i)\n",
                    "\(ok.result.stderr)")
        }
    }

    // MARK: 2. Idle unauthenticated sockets

    @Test("120 idle sockets from one address are capped per source: a real login from another still succeeds")
    func idleSocketsOneSource() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let server = try start(dir)
        defer { server.stop() }
        var idle: [CInt] = []
        defer { idle.forEach { close($0) } }
        for _ in 0..<120 {
            if let fd = SourceSocket.connect(from: "127.0.0.2", to: server.port) { idle.append(fd) }
        }
        #expect(idle.count == 120)
        #expect(server.waitForLog("4 unauthenticated connections from this address"), "\(server.log)")
        let login = try runBounded("qssh", client(dir, server, ["echo in"]), seconds: 20)
        #expect(!login.timedOut && login.result.status == 0 && String(decoding: login.result.stdout, as: UTF8.self) == "in\n",
                "\(login.result.stderr)")
    }

    @Test("120 idle sockets from 120 addresses fill the startups; a real login still gets in (a silent one is closed for it)")
    func idleSocketsManySources() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        // No random early drop here (start = full = 50), so that the outcome does not depend on
        // chance: the 51st connection is refused unless a silent one is closed for it.
        let server = try start(dir, ["--max-startups", "50"])
        defer { server.stop() }
        var idle: [CInt] = []
        defer { idle.forEach { close($0) } }
        for i in 0..<120 {
            if let fd = SourceSocket.connect(from: "127.0.1.\(i + 1)", to: server.port) { idle.append(fd) }
        }
        #expect(idle.count == 120)
        // The server makes room only with connections silent for its one-second grace time.
        let opened = Date()
        while Date().timeIntervalSince(opened) < 1.2 { usleep(50_000) }
        let login = try runBounded("qssh", client(dir, server, ["echo in"]), seconds: 20)
        #expect(!login.timedOut && login.result.status == 0 && String(decoding: login.result.stdout, as: UTF8.self) == "in\n",
                "\(login.result.stderr)")
        #expect(server.waitForLog("closed a silent unauthenticated connection"), "\(server.log)")
    }

    // MARK: 3. One refusal for every reason

    @Test("an unknown account and a wrong key get the same refusal text, and neither comes back sooner")
    func identicalRefusals() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let server = try start(dir)
        defer { server.stop() }
        #expect(try Tools.run("qssh", client(dir, server, ["true"])).status == 0)  // records the host key
        var unknownTimes: [Double] = []
        var wrongKeyTimes: [Double] = []
        var unknownText = Set<String>()
        var wrongKeyText = Set<String>()
        for _ in 0..<4 {
            let unknown = try runBounded("qssh", client(dir, server, user: "no-such-user-q1", ["true"]), seconds: 20)
            let wrong = try runBounded("qssh", client(dir, server, identity: "stranger", ["true"]), seconds: 20)
            unknownTimes.append(unknown.elapsed)
            wrongKeyTimes.append(wrong.elapsed)
            unknownText.insert(unknown.result.stderr)
            wrongKeyText.insert(wrong.result.stderr)
            #expect(unknown.result.status == 255 && wrong.result.status == 255)
        }
        #expect(unknownText == wrongKeyText, "\(unknownText) vs \(wrongKeyText)")
        #expect(unknownText == ["qssh: permission denied\n"], "\(unknownText)")
        let medianUnknown = unknownTimes.sorted()[2]
        let medianWrong = wrongKeyTimes.sorted()[2]
        // Both are held to the refusal floor (100 ms + a per-name offset below 50 ms).
        #expect(medianUnknown >= 0.1 && medianWrong >= 0.1, "\(unknownTimes) \(wrongKeyTimes)")
        #expect(abs(medianUnknown - medianWrong) < 0.1, "\(unknownTimes) \(wrongKeyTimes)")
        // The reasons are in the server's log only.
        #expect(server.waitForLog("refused no-such-user-q1 from 127.0.0.1: no account 'no-such-user-q1'"), "\(server.log)")
        #expect(server.log.contains("is not in \(dir)/authorized_keys"))
    }

    // MARK: 4. StrictModes on the whole path

    @Test("a world-writable home or any directory above it makes qsshd refuse the keys file",
          .enabled(if: HardeningTests.rootWithUseradd))
    func strictModesWholePath() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let user = try makeAccount(dir, "s")
        defer { _ = try? Tools.run("/usr/sbin/userdel", ["-r", user.name]) }
        let keysDir = user.home + "/.qssh"
        try FileManager.default.createDirectory(atPath: keysDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: keysDir + "/authorized_keys")
        #expect(try Tools.run("/bin/chown", ["-R", "\(user.name):\(user.name)", keysDir]).status == 0)
        chmod(dir, 0o755)
        chmod(user.home, 0o755)
        let server = try start(dir, ["--authorized-keys", "%h/.qssh/authorized_keys"])
        defer { server.stop() }
        #expect(try Tools.run("qssh", client(dir, server, user: user.name, ["true"])).status == 0)
        chmod(user.home, 0o777)  // the keys file's grandparent
        let home = try Tools.run("qssh", client(dir, server, user: user.name, ["true"]))
        #expect(home.status == 255 && home.stderr.contains("permission denied"), "\(home.stderr)")
        #expect(server.waitForLog("\(user.home) is writable by group or others"), "\(server.log)")
        chmod(user.home, 0o755)
        chmod(dir, 0o777)  // higher up
        let above = try Tools.run("qssh", client(dir, server, user: user.name, ["true"]))
        #expect(above.status == 255, "\(above.stderr)")
        #expect(server.waitForLog("\(dir) is writable by group or others"), "\(server.log)")
        chmod(dir, 0o755)
        #expect(try Tools.run("qssh", client(dir, server, user: user.name, ["true"])).status == 0)
    }

    // MARK: 6. Log and terminal injection

    @Test("a user name with a newline is refused by the client and by the server, and plants no log line")
    func newlineUserName() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let server = try start(dir)
        defer { server.stop() }
        let fake = "x\n2026-01-01T00:00:00Z qsshd[1]: INFO accepted root"
        let local = try Tools.run("qssh", client(dir, server, user: fake, ["true"]))
        #expect(local.status == 255 && local.stderr.contains("cannot contain control characters") && !local.stderr.contains("\n2026"), "\(local.stderr)")
        // A client that sends it anyway (made here with the library).
        let host = try String(contentsOfFile: dir + "/host.pub", encoding: .utf8)
        guard case .host(let hostKey, _) = try PublicKeyLine(parsing: host.trimmingCharacters(in: .whitespacesAndNewlines)),
              case .user(let userKey) = try PrivateKeyFile.decode(try KeyFileIO.readPrivateKey(path: dir + "/id"))
        else { throw ToolTestError("keys") }
        let connection = QNSPConnection(client: .init(username: fake, user: userKey, pinnedHostKey: hostKey))
        try connection.start()
        guard let fd = TCP.connect(server.port) else { throw ToolTestError("connect") }
        defer { close(fd) }
        #expect(TCP.writeAll(fd, connection.takeOutbound()))
        // The server hello arrives; our client then sends its ClientAuth with the bad name.
        var reply: [UInt8] = []
        while !connection.isClosed && reply.count < 1536, let chunk = SourceSocket.readSome(fd, max: 8192, seconds: 10), !chunk.isEmpty {
            reply += chunk
            if (try? connection.receive(chunk)) == nil { break }
            let out = connection.takeOutbound()
            if !out.isEmpty { _ = TCP.writeAll(fd, out) }
        }
        #expect(server.waitForLog("user name contains control characters"), "\(server.log)")
        #expect(!server.log.split(separator: "\n").contains { $0.hasPrefix("2026-01-01") }, "\(server.log)")
    }

    @Test("escape sequences in a (fake) server's Reject reach the terminal escaped")
    func escapedReject() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(listener, 4)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let evil = "\u{1b}[2J\u{1b}]0;pwned\u{07}all good"
        let fakeServer = Thread {
            let c = accept(listener, nil, nil)
            _ = TCP.writeAll(c, QNSPConnection.rejectRecord(code: .other, message: evil))
            _ = SourceSocket.readSome(c, max: 65536, seconds: 5)
            close(c)
        }
        fakeServer.start()
        defer { close(listener) }
        let r = try Tools.run("qssh", ["-p", "\(port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts",
                                       "-o", "StrictHostKeyChecking=accept-new", "127.0.0.1", "true"])
        #expect(r.status == 255)
        #expect(!r.stderr.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x07 }, "\(Array(r.stderr.utf8))")
        #expect(r.stderr.contains("\\x1b[2J\\x1b]0;pwned\\x07all good"), "\(r.stderr)")
    }

    // MARK: 7. ClientHello flood

    @Test("under a flood of replayed client hellos the server answers none of them and real users still log in (after a cookie round)")
    func clientHelloFlood() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let server = try start(dir)
        defer { server.stop() }
        #expect(try Tools.run("qssh", client(dir, server, ["true"])).status == 0)  // records the host key
        // A genuine hello, seen once by the server (as if captured from a real session), then replayed.
        let host = try String(contentsOfFile: dir + "/host.pub", encoding: .utf8)
        guard case .host(let hostKey, _) = try PublicKeyLine(parsing: host.trimmingCharacters(in: .whitespacesAndNewlines)),
              case .user(let userKey) = try PrivateKeyFile.decode(try KeyFileIO.readPrivateKey(path: dir + "/id"))
        else { throw ToolTestError("keys") }
        let original = QNSPConnection(client: .init(username: "root", user: userKey, pinnedHostKey: hostKey))
        try original.start()
        let hello = original.takeOutbound()
        guard let first = TCP.connect(server.port) else { throw ToolTestError("connect") }
        _ = TCP.writeAll(first, hello)
        let firstAnswer = SourceSocket.readSome(first, max: 12, seconds: 10) ?? []
        close(first)
        #expect(firstAnswer.count >= 6 && firstAnswer[5] == ClearRecord.MessageType.serverHello.rawValue)

        let answers = NIOLockedValueBox<[UInt8: Int]>([:])
        let stop = NIOLockedValueBox(false)
        let port = server.port
        var flooders: [Thread] = []
        for t in 0..<8 {
            let thread = Thread {
                while !stop.withLockedValue({ $0 }) {
                    guard let fd = SourceSocket.connect(from: "127.0.2.\(t + 1)", to: port) else { continue }
                    _ = TCP.writeAll(fd, hello)
                    let answer = SourceSocket.readSome(fd, max: 12, seconds: 5) ?? []
                    close(fd)
                    let type: UInt8 = answer.count >= 6 ? answer[5] : 0
                    answers.withLockedValue { $0[type, default: 0] += 1 }
                }
            }
            thread.start()
            flooders.append(thread)
        }
        // Once the flood is under way, a real user logs in.
        let flooding = Date()
        while answers.withLockedValue({ $0.values.reduce(0, +) }) < 200 && Date().timeIntervalSince(flooding) < 10 { usleep(10_000) }
        let login = try runBounded("qssh", client(dir, server, options: ["-v"], ["echo in"]), seconds: 30)
        stop.withLockedValue { $0 = true }
        while flooders.contains(where: { $0.isExecuting }) { usleep(10_000) }
        let seen = answers.withLockedValue { $0 }
        #expect(!login.timedOut && login.result.status == 0 && String(decoding: login.result.stdout, as: UTF8.self) == "in\n",
                "\(login.result.stderr)")
        #expect(login.result.stderr.contains("the server asked for a cookie round trip"), "\(login.result.stderr)")
        #expect(seen.values.reduce(0, +) >= 200, "\(seen)")
        #expect(seen[ClearRecord.MessageType.serverHello.rawValue] == nil, "replays answered with a server hello: \(seen)")
        #expect(seen.keys.allSatisfy { [ClearRecord.MessageType.reject.rawValue, ClearRecord.MessageType.retry.rawValue].contains($0) }, "\(seen)")
    }

    // MARK: 9. The tty group

    @Test("a root qsshd gives a session's terminal to the user and the tty group, mode 620",
          .enabled(if: HardeningTests.rootWithUseradd && SessionUser.groupID("tty") != nil))
    func ttyGroup() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let user = try makeAccount(dir, "t")
        defer { _ = try? Tools.run("/usr/sbin/userdel", ["-r", user.name]) }
        chmod(dir, 0o755)
        try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: dir + "/keys-" + user.name)
        let server = try start(dir, ["--authorized-keys", dir + "/keys-%u"])
        defer { server.stop() }
        let r = try Tools.run("qssh", client(dir, server, user: user.name, options: ["-t"], ["stat -c '%U %G %a' $(tty)"]))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(String(decoding: r.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == "\(user.name) tty 620")
    }

    // MARK: 10, 11. Independent SSH libraries through `qssh tunnel`

    @Test("asyncssh and paramiko: an empty-originator direct-tcpip leaves the connection and its sessions alive; symlinks point the right way",
          arguments: ["asyncssh", "paramiko"])
    func sshLibraries(_ library: String) throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir)
        let server = try start(dir)
        defer { server.stop() }
        #expect(try Tools.run("qssh", client(dir, server, ["true"])).status == 0)  // records the host key
        let echo = try EchoServer()
        defer { echo.stop() }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Python/ssh_library_checks.py").path
        let proxy = "\(try Tools.path("qssh")) tunnel -p \(server.port) -i \(dir)/id --known-hosts \(dir)/known_hosts root@127.0.0.1"
        let r = try Tools.run("/usr/bin/env", ["python3", script, library, "--proxy", proxy, "--user", "root",
                                                "--echo-port", "\(echo.port)", "--dir", dir])
        let json = try JSONSerialization.jsonObject(with: r.stdout) as? [String: String] ?? [:]
        #expect(json["fatal"] == nil, "\(json) \(r.stderr)")
        #expect(json["exec"] == "hi\n")
        #expect(json["session_before"] == "before\n")
        #expect(json["direct_tcpip"] == "ping", "\(json)")
        #expect(json["session_after"] == "after\n", "\(json)")
        #expect(json["symlink_remote"] == "\(library)-target", "\(json)")
        #expect(json["symlink_local"] == "\(library)-target", "\(json)")
    }
}
}
