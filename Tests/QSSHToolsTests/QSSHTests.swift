import Foundation
import Testing

extension ToolSuites {
@Suite("qssh and qsshd")
struct QSSHTests {
    /// Keys and an authorized_keys file in a temp dir; qsshd started on an ephemeral loopback port.
    func start(_ dir: String) throws -> ServeProcess {
        for (t, f) in [("host", "host"), ("user", "id"), ("user", "stranger")] {
            let r = try Tools.run("qssh-keygen", ["-q", "-t", t, "-f", dir + "/" + f, "-N", ""])
            guard r.status == 0 else { throw ToolTestError(r.stderr) }
        }
        try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: dir + "/authorized_keys")
        return try ServeProcess(tool: "qsshd", arguments: ["-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys"])
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
        #expect(r.stderr.contains("oops") && !r.stderr.contains("hi"))
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
        #expect(stranger.status == 255 && stranger.stderr.contains("not authorized"), "\(stranger.stderr)")
        try? FileManager.default.removeItem(atPath: dir + "/known_hosts")
        let batch = try qssh(dir, port: server.port, options: ["-o", "BatchMode=yes"], ["touch " + marker])
        #expect(batch.status == 255 && batch.stderr.contains("Host key verification failed"), "\(batch.stderr)")
        #expect(try Tools.run("qssh-keygen", ["-q", "-t", "host", "-f", dir + "/other", "-N", ""]).status == 0)
        let other = try String(contentsOfFile: dir + "/other.pub", encoding: .utf8)
        try ("[127.0.0.1]:\(server.port) " + other).write(toFile: dir + "/known_hosts", atomically: true, encoding: .utf8)
        let changed = try qssh(dir, port: server.port, options: [], ["touch " + marker])
        #expect(changed.status == 255 && changed.stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"), "\(changed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker))
        let tty = try qssh(dir, port: server.port, options: ["-t"], ["true"])
        #expect(tty.status == 255 && tty.stderr.contains("not supported yet"))
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
            children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            if fdsAfter <= fdsBefore && children.trimmingCharacters(in: .whitespaces).isEmpty { break }
            usleep(50_000)
        }
        #expect(fdsAfter <= fdsBefore, "qsshd had \(fdsBefore) fds before and \(fdsAfter) after")
        #expect(children.trimmingCharacters(in: .whitespaces).isEmpty, "children left: \(children)")
    }
}
}

final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var failed: [Int] = []
    func add(_ i: Int, _ ok: Bool) { lock.lock(); if !ok { failed.append(i) }; lock.unlock() }
    var failures: [Int] { lock.lock(); defer { lock.unlock() }; return failed.sorted() }
}
