import QSSHSession
import Foundation

/// Process-level comparison: `qnsp connect` against `qnsp serve`, and stock `ssh` against a
/// stock `sshd` started for this run, both on 127.0.0.1 with throwaway keys.
struct ProcessBench {
    let dir: String
    let toolDir: String

    init(toolDir: String) throws {
        self.toolDir = toolDir
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("qnsp-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: dir) }

    struct Figures {
        var connectMedian: Double
        var connectP90: Double
        var bulkMBps: Double
        /// Server-side private memory per idle session (kB): qsshd's growth, or all of sshd's per-connection processes.
        var idleSessionKB: Double = 0
    }

    /// Opens `count` sessions running `sleep` through `client` (a shell command prefix) and returns
    /// the server-side private memory they cost per session, as `serverKB` measures it once all are up.
    func idleSessions(count: Int, client: String, serverPid: pid_t, serverKB: () -> Int, ready: () -> Bool) throws -> Double {
        let before = serverKB()
        var clients: [ChildProcess] = []
        defer {
            // The remote sleeps first: a session without a terminal may outlive its client (sshd's do).
            for p in Self.descendants(of: serverPid) where p.comm == "sleep" { kill(p.pid, SIGKILL) }
            for c in clients { kill(c.pid, SIGKILL); _ = c.waitForExit(); for fd in [c.stdin, c.stdout, c.stderr] { close(fd) } }
        }
        for _ in 0..<count {
            clients.append(try ChildProcess.spawn(["/bin/sh", "-c", client + " 'sleep 120' </dev/null"],
                                                  environment: ProcessInfo.processInfo.environment, directory: nil))
        }
        for _ in 0..<3000 where !ready() { usleep(20_000) }
        guard ready() else { throw BenchError("the \(count) idle sessions did not all start (server \(serverPid): \(Self.descendants(of: serverPid).map { "\($0.pid):\($0.comm)" }))") }
        return Double(serverKB() - before) / Double(count)
    }

    /// Processes whose parent chain leads to `root` (not including it).
    static func descendants(of root: pid_t) -> [(pid: pid_t, comm: String)] {
        var parent: [pid_t: pid_t] = [:], comm: [pid_t: String] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
            comm[pid] = String(stat[stat.index(after: open)..<close])
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            if fields.count > 1, let ppid = pid_t(fields[1]) { parent[pid] = ppid }
        }
        return parent.keys.filter { pid in
            var p = parent[pid]
            while let q = p, q > 1 { if q == root { return true }; p = parent[q] }
            return false
        }.map { ($0, comm[$0] ?? "") }
    }

    /// Repeats `command` `runs` times (each a full process: spawn, handshake, exit), then pipes `bytes` through `bulk`.
    func measure(connect command: String, bulk: String, bytes: Int, runs: Int) throws -> Figures {
        var times: [Double] = []
        for _ in 0..<runs {
            let start = Clock.now
            let r = try ProcessRunner.shell(command)
            guard r.status == 0 else { throw BenchError("'\(command)' failed with status \(r.status)") }
            times.append(Clock.since(start))
        }
        let start = Clock.now
        let r = try ProcessRunner.shell("head -c \(bytes) /dev/zero | \(bulk)")
        let seconds = Clock.since(start)
        guard r.status == 0 else { throw BenchError("'\(bulk)' failed with status \(r.status)") }
        let (m, p) = ProcessRunner.percentiles(times)
        return Figures(connectMedian: m, connectP90: p, bulkMBps: Double(bytes) / seconds / 1e6)
    }

    /// `qnsp serve --discard` and `qnsp connect` as separate processes.
    func qnsp(bytes: Int, runs: Int, cipher: String) throws -> Figures {
        let keygen = toolDir + "/qssh-keygen", qnsp = toolDir + "/qnsp"
        try ProcessRunner.shell("'\(keygen)' -q -t host -f '\(dir)/qhost' -N '' && '\(keygen)' -q -t user -f '\(dir)/qid' -N '' && cp '\(dir)/qid.pub' '\(dir)/qauth'")
        let (server, text) = try ProcessRunner.startServer(
            [qnsp, "serve", "-p", "0", "-h", dir + "/qhost", "--authorized-keys", dir + "/qauth", "--discard", "--ciphers", cipher],
            marker: "\n")
        defer { ProcessRunner.stop(server) }
        guard let r = text.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression),
              let port = Int(text[r].split(separator: ":").last ?? "") else { throw BenchError("qnsp serve: \(text)") }
        let client = "'\(qnsp)' connect -p \(port) -i '\(dir)/qid' --known-hosts '\(dir)/qkh' --accept-new --ciphers \(cipher) 127.0.0.1"
        return try measure(connect: client + " </dev/null >/dev/null", bulk: client + " >/dev/null", bytes: bytes, runs: runs)
    }

    /// `qsshd` and `qssh HOST true` (connect, QNSP handshake, SSH-2 session, remote `true`, exit),
    /// and `qssh HOST 'cat >/dev/null'` for bulk.
    func qssh(bytes: Int, runs: Int) throws -> Figures {
        let keygen = toolDir + "/qssh-keygen", qsshd = toolDir + "/qsshd", qssh = toolDir + "/qssh"
        try ProcessRunner.shell("'\(keygen)' -q -t host -f '\(dir)/shost' -N '' && '\(keygen)' -q -t user -f '\(dir)/sid' -N '' && cp '\(dir)/sid.pub' '\(dir)/sauth'")
        let (server, text) = try ProcessRunner.startServer(
            [qsshd, "-p", "0", "-l", "127.0.0.1", "-h", dir + "/shost", "--authorized-keys", dir + "/sauth"] + Self.benchLimits, marker: "\n")
        defer { ProcessRunner.stop(server) }
        guard let r = text.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression),
              let port = Int(text[r].split(separator: ":").last ?? "") else { throw BenchError("qsshd: \(text)") }
        let client = "'\(qssh)' -p \(port) -i '\(dir)/sid' --known-hosts '\(dir)/skh' -o StrictHostKeyChecking=accept-new 127.0.0.1"
        // Idle sessions first, on a fresh server, so that memory freed by earlier traffic does not hide their cost.
        let sessions = 20
        let idle = try idleSessions(
            count: sessions, client: client, serverPid: server.pid, serverKB: { Self.privateKB(server.pid) },
            ready: { Self.descendants(of: server.pid).filter { $0.comm == "sleep" }.count >= sessions })
        var figures = try measure(connect: client + " true </dev/null", bulk: client + " 'cat >/dev/null'", bytes: bytes, runs: runs)
        figures.idleSessionKB = idle
        return figures
    }

    /// qsshd limits for a benchmark: it is one source opening many connections at once on
    /// purpose (the defaults would refuse beyond 4 unauthenticated connections from one address).
    static let benchLimits = ["--max-startups", "400", "--per-source-max-startups", "none"]

    /// Private memory (kB) of a process, from /proc/PID/smaps_rollup: Private_Clean + Private_Dirty,
    /// or Private_Dirty alone.
    static func privateKB(_ pid: pid_t, dirtyOnly: Bool = false) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8) else { return 0 }
        var total = 0
        for line in text.split(separator: "\n") where line.hasPrefix(dirtyOnly ? "Private_Dirty" : "Private_") {
            total += Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return total
    }

    /// A stock sshd (OpenSSH) on a free 127.0.0.1 port with its default key exchange
    /// (sntrup761x25519 in OpenSSH 9.x) and the given cipher.
    func openssh(bytes: Int, runs: Int, cipher: String) throws -> (Figures, String)? {
        guard StockSSHD.binary != nil, FileManager.default.isExecutableFile(atPath: "/usr/bin/ssh") else { return nil }
        let stock = try StockSSHD.start(dir: dir)
        let server = stock.process, port = stock.port
        defer { stock.stop() }
        let ssh = "ssh -F /dev/null -p \(port) -i '\(dir)/ssh_id' -o UserKnownHostsFile='\(dir)/ssh_kh' -o StrictHostKeyChecking=accept-new -o BatchMode=yes -c \(cipher) -T 127.0.0.1"
        let version = try ProcessRunner.shell("ssh -V 2>&1").output.trimmingCharacters(in: .whitespacesAndNewlines)
        var figures = try measure(connect: ssh + " true", bulk: ssh + " 'cat >/dev/null'", bytes: bytes, runs: runs)
        let sessions = 20
        // sshd forks processes per connection: count all of them (not the listener, not the sleeps).
        let perConnection = { Self.descendants(of: server.pid).filter { $0.comm.hasPrefix("sshd") }.reduce(0) { $0 + Self.privateKB($1.pid) } }
        figures.idleSessionKB = try idleSessions(
            count: sessions, client: ssh, serverPid: server.pid, serverKB: perConnection,
            ready: { Self.descendants(of: server.pid).filter { $0.comm == "sleep" }.count >= sessions })
        return (figures, version)
    }
}
