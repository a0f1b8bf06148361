import Foundation
import QNSPCrypto
import QSSHSession
import Testing

extension ToolSuites {
/// -L, -R, -D, -W, -J, policy and OpenSSH through `qssh tunnel`, all on 127.0.0.1 with real processes.
@Suite("forwarding and jumps")
struct ForwardingTests {
    let q = QSSHTests()

    /// Starts `qssh -N -v ARGS 127.0.0.1` and reads stderr until every marker appeared.
    func startForwarder(_ dir: String, port: Int, _ args: [String], markers: [String]) throws -> (ChildProcess, String) {
        let child = try ChildProcess.spawn(
            [try Tools.path("qssh"), "-p", "\(port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts",
             "-o", "StrictHostKeyChecking=accept-new", "-N", "-v"] + args + ["127.0.0.1"],
            environment: ProcessInfo.processInfo.environment, directory: nil)
        let text = readStderr(of: child, until: markers)
        guard markers.allSatisfy({ text.contains($0) }) else {
            kill(child.pid, SIGKILL); _ = child.waitForExit()
            throw ToolTestError("qssh did not set up its forwards:\n\(text)")
        }
        return (child, text)
    }

    func stop(_ child: ChildProcess) {
        kill(child.pid, SIGTERM)
        _ = child.waitForExit()
        for fd in [child.stdin, child.stdout, child.stderr] { close(fd) }
    }

    /// "Allocated port N for WHAT" → N.
    func allocated(_ text: String, _ what: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasSuffix(what) && line.hasPrefix("Allocated port ") {
            return Int(line.dropFirst("Allocated port ".count).prefix { $0.isNumber })
        }
        return nil
    }

    func socks5(_ port: Int, host: [UInt8], type: UInt8, targetPort: Int) -> (CInt, UInt8?)? {
        guard let fd = TCP.connect(port) else { return nil }
        guard TCP.writeAll(fd, [5, 1, 0]), TCP.readExactly(fd, 2) == [5, 0] else { close(fd); return nil }
        let request: [UInt8] = [5, 1, 0, type] + (type == 3 ? [UInt8(host.count)] : []) + host + [UInt8(targetPort >> 8), UInt8(targetPort & 0xff)]
        guard TCP.writeAll(fd, request), let reply = TCP.readExactly(fd, 10) else { return (fd, nil) }
        return (fd, reply[1])
    }

    @Test("-L, -R 0, -D (SOCKS5 by name and by address, SOCKS4a) move 8 MiB both ways; 50 parallel; bad input leaves the session up")
    func forwards() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try q.start(dir)
        defer { server.stop() }
        let echo = try EchoServer()
        defer { echo.stop() }
        let (client, text) = try startForwarder(dir, port: server.port, [
            "-L", "0:127.0.0.1:\(echo.port)", "-R", "0:127.0.0.1:\(echo.port)", "-D", "0", "-L", "0:127.0.0.1:1",
        ], markers: ["for remote forward", "for SOCKS proxy", "for local forward to 127.0.0.1:1\n"])
        defer { stop(client) }
        let local = try #require(allocated(text, "local forward to 127.0.0.1:\(echo.port)"), "\(text)")
        let remote = try #require(allocated(text, "remote forward to 127.0.0.1:\(echo.port)"), "\(text)")
        let socks = try #require(allocated(text, "SOCKS proxy"), "\(text)")
        let closed = try #require(allocated(text, "local forward to 127.0.0.1:1"), "\(text)")
        let blob = TCP.pattern(8 << 20)

        let l = TCP.echoRoundTrip(try #require(TCP.connect(local)), blob)
        #expect(l.ok, "-L returned \(l.received) of \(blob.count) bytes")
        let r = TCP.echoRoundTrip(try #require(TCP.connect(remote)), blob)
        #expect(r.ok, "-R returned \(r.received) of \(blob.count) bytes")
        let byName = try #require(socks5(socks, host: Array("localhost".utf8), type: 3, targetPort: echo.port))
        #expect(byName.1 == 0)
        let d1 = TCP.echoRoundTrip(byName.0, blob)
        #expect(d1.ok, "-D (name) returned \(d1.received) bytes")
        let byAddress = try #require(socks5(socks, host: [127, 0, 0, 1], type: 1, targetPort: echo.port))
        #expect(byAddress.1 == 0)
        let d2 = TCP.echoRoundTrip(byAddress.0, blob)
        #expect(d2.ok, "-D (IPv4) returned \(d2.received) bytes")
        // SOCKS4a with the request and the first data in one write.
        let s4 = try #require(TCP.connect(socks))
        #expect(TCP.writeAll(s4, [4, 1, UInt8(echo.port >> 8), UInt8(echo.port & 0xff), 0, 0, 0, 1] + Array("me".utf8) + [0] + Array("localhost".utf8) + [0] + Array("ping".utf8)))
        shutdown(s4, CInt(SHUT_WR))  // the half-close comes before the proxy has even connected
        var limit = timeval(tv_sec: 10, tv_usec: 0)  // a lost half-close must fail the test, not hang it
        setsockopt(s4, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        #expect(TCP.readExactly(s4, 8)?[1] == 0x5A)
        #expect(TCP.readToEnd(s4) == Array("ping".utf8), "the early half-close did not reach the target")
        close(s4)

        // 50 connections at once through -L.
        let results = LockedResults()
        let done = DispatchGroup()
        for i in 0..<50 {
            done.enter()
            Thread {
                let data = TCP.pattern(256 << 10, seed: UInt32(i + 7))
                if let fd = TCP.connect(local) { results.add(i, TCP.echoRoundTrip(fd, data).ok) } else { results.add(i, false) }
                done.leave()
            }.start()
        }
        done.wait()
        #expect(results.failures.isEmpty, "failed parallel connections: \(results.failures)")

        // Bad input: each gets an error or a closed connection, and the session carries on.
        let badVersion = try #require(TCP.connect(socks))
        _ = TCP.writeAll(badVersion, [6, 1, 0])
        #expect(TCP.readToEnd(badVersion).isEmpty)
        close(badVersion)
        let longName = try #require(TCP.connect(socks))
        _ = TCP.writeAll(longName, [4, 1, 0, 80, 0, 0, 0, 1, 0] + [UInt8](repeating: 0x61, count: 300) + [0])
        #expect(TCP.readToEnd(longName).prefix(2) == [0, 0x5B])
        close(longName)
        let unresolvable = try #require(socks5(socks, host: Array("no-such-host.invalid".utf8), type: 3, targetPort: 80))
        #expect(unresolvable.1 != nil && unresolvable.1 != 0)
        close(unresolvable.0)
        let closedPort = try #require(TCP.connect(closed))
        #expect(TCP.readToEnd(closedPort).isEmpty)
        close(closedPort)
        let after = TCP.echoRoundTrip(try #require(TCP.connect(local)), Array("still here".utf8))
        #expect(after.ok, "the session did not survive bad input")
    }

    @Test("-f -N: qssh returns once the forward is up and keeps it in the background; -f reports a failed start")
    func background() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try q.start(dir)
        let echo = try EchoServer()
        defer { echo.stop() }
        let parent = try ChildProcess.spawn(
            [try Tools.path("qssh"), "-f", "-p", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts",
             "-o", "StrictHostKeyChecking=accept-new", "-N", "-L", "0:127.0.0.1:\(echo.port)", "127.0.0.1"],
            environment: ProcessInfo.processInfo.environment, directory: nil)
        close(parent.stdin)
        #expect(parent.waitForExit() == .exited(0))
        let text = readStderr(of: parent, until: ["Allocated port"])
        let port = try #require(allocated(text, "local forward to 127.0.0.1:\(echo.port)"), "\(text)")
        let r = TCP.echoRoundTrip(try #require(TCP.connect(port)), Array("from the background".utf8))
        #expect(r.ok, "the background qssh does not forward")
        server.stop()  // the background qssh loses its connection and ends, closing the shared pipes
        _ = readAll(parent.stderr)
        close(parent.stdout); close(parent.stderr)
        let failed = try Tools.run("qssh", ["-f", "-N", "-p", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts", "127.0.0.1"])
        #expect(failed.status == 255 && failed.stderr.contains("connect to 127.0.0.1 port \(server.port)"), "\(failed.stderr)")
        let noCommand = try Tools.run("qssh", ["-f", "-p", "\(server.port)", "127.0.0.1"])
        #expect(noCommand.status == 255 && noCommand.stderr.contains("-f needs a command or -N"))
    }

    @Test("server policy: --permit-open and --permit-listen refuse with clear errors; -W reaches what is allowed")
    func policy() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let echo = try EchoServer()
        defer { echo.stop() }
        let server = try q.start(dir, extra: ["--permit-open", "127.0.0.1:\(echo.port)", "--permit-listen", "none"])
        defer { server.stop() }
        let allowed = try Tools.run("qssh", ["-p", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts",
                                             "-o", "StrictHostKeyChecking=accept-new", "-W", "127.0.0.1:\(echo.port)", "127.0.0.1"],
                                    stdin: Data("through -W\n".utf8))
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(String(decoding: allowed.stdout, as: UTF8.self) == "through -W\n")
        let refused = try q.qssh(dir, port: server.port, options: ["-o", "BatchMode=yes", "-W", "127.0.0.1:\(server.port)"], [])
        #expect(refused.status == 255 && refused.stderr.contains("refused the channel"), "\(refused.stderr)")
        let strict = try q.qssh(dir, port: server.port, options: ["-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:1"], ["echo ran"])
        #expect(strict.status == 255 && strict.stderr.contains("remote port forwarding failed"), "\(strict.stderr)")
        #expect(strict.stdout.isEmpty)
        let lenient = try q.qssh(dir, port: server.port, options: ["-o", "BatchMode=yes", "-R", "0:127.0.0.1:1"], ["echo ran"])
        #expect(lenient.status == 0 && lenient.stderr.contains("warning: remote port forwarding failed"), "\(lenient.stderr)")
        #expect(String(decoding: lenient.stdout, as: UTF8.self) == "ran\n")
        let badSpec = try q.qssh(dir, port: server.port, options: ["-L", "99999:x:1"], ["true"])
        #expect(badSpec.status == 255 && badSpec.stderr.contains("bad port '99999'"), "\(badSpec.stderr)")
    }

    @Test("-J with two hops: the command runs end to end and the jump host's link carries no plaintext")
    func jumpChain() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = try q.start(dir)
        defer { target.stop() }
        let jump = try ServeProcess(tool: "qsshd", arguments: ["-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys"])
        defer { jump.stop() }
        // What the jump host sends to and receives from the target passes through this recorder.
        let capture = try RecordingProxy(targetPort: target.port)
        defer { capture.stop() }
        let r = try Tools.run("qssh", [
            "-p", "\(capture.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts", "-o", "StrictHostKeyChecking=accept-new",
            "-J", "127.0.0.1:\(jump.port),127.0.0.1:\(jump.port)", "127.0.0.1", "echo SECRET-$((6*7)); exit 7",
        ])
        #expect(r.status == 7, "\(r.stderr)")
        #expect(String(decoding: r.stdout, as: UTF8.self) == "SECRET-42\n")
        #expect(capture.recorded.withLockedValue { $0.count } > 1000)
        for plain in ["SECRET-42", "echo SECRET", "SSH-2.0", "exit 7"] {
            #expect(!capture.contains(plain), "the jump host's link carried '\(plain)' in clear")
        }
    }

    @Test("OpenSSH's ssh runs a command on qsshd through 'qssh tunnel' as its ProxyCommand")
    func openSSHThroughTunnel() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try q.start(dir)
        defer { server.stop() }
        let me = try #require(SessionUser.current()?.name)
        let proxy = "\(try Tools.path("qssh")) tunnel -p \(server.port) -i \(dir)/id --known-hosts \(dir)/known_hosts -o StrictHostKeyChecking=accept-new %r@%h"
        let ssh = try Tools.run("/usr/bin/ssh", [
            "-F", "/dev/null", "-o", "ProxyCommand=\(proxy)", "-o", "UserKnownHostsFile=\(dir)/ssh_known_hosts",
            "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes", "-l", me, "127.0.0.1", "echo from-openssh; exit 6",
        ])
        #expect(ssh.status == 6, "\(ssh.stderr)")
        #expect(String(decoding: ssh.stdout, as: UTF8.self) == "from-openssh\n")
        // The inner host key is derived from the host key: a second connection matches the recorded one.
        let again = try Tools.run("/usr/bin/ssh", [
            "-F", "/dev/null", "-o", "ProxyCommand=\(proxy)", "-o", "UserKnownHostsFile=\(dir)/ssh_known_hosts",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-l", me, "127.0.0.1", "true",
        ])
        #expect(again.status == 0, "\(again.stderr)")
        // qsshd offers the inner null scheme first; OpenSSH does not know it and agrees on AES-GCM.
        let verbose = try Tools.run("/usr/bin/ssh", [
            "-vv", "-F", "/dev/null", "-o", "ProxyCommand=\(proxy)", "-o", "UserKnownHostsFile=\(dir)/ssh_known_hosts",
            "-o", "BatchMode=yes", "-l", me, "127.0.0.1", "true",
        ])
        #expect(verbose.status == 0)
        #expect(verbose.stderr.contains("ciphers ctos: qnsp-tunnel@qssh,"), "\(verbose.stderr)")
        #expect(verbose.stderr.contains("client->server cipher: aes"), "\(verbose.stderr)")
    }
}
}
