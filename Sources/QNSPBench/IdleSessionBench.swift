import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSP
import QNSPCrypto
import QNSPNIO
import QSSHSession

/// Many concurrent idle logged-in sessions against one qsshd: the clients are in this process
/// (QNSP + SSH-2 connections with keepalives, like `qssh -N`), the server is the real qsshd.
/// Reports qsshd's private memory per session, whether every session survived the hold time,
/// and `qssh HOST true` latency while they are held; then the same per-session memory for a stock
/// sshd with `ssh -N` clients (fewer of them: each is a process on both sides).
struct IdleSessionBench {
    let toolDir: String
    let dir: String

    struct Result {
        var sessions: Int
        var established: Int
        var aliveAfterHold: Int
        var holdSeconds: Double
        var qsshdKBPerSession: Double
        var connectExecMedian: Double
        var connectExecP90: Double
        var sshdSessions: Int
        var sshdKBPerSession: Double?
    }

    /// Raises this process's open-file limit to its hard limit (children inherit it).
    static func raiseFileLimit() -> Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return Int(limit.rlim_cur)
    }

    func run(
        sessions: Int,
        holdSeconds: Double,
        keepalive: Int64,
        sshdSessions: Int,
        progress: (String) -> Void
    ) throws -> Result {
        let files = Self.raiseFileLimit()
        guard files > sessions + 200 else {
            throw BenchError("open-file limit \(files) is too low for \(sessions) sessions")
        }
        let keygen = toolDir + "/qssh-keygen"
        let qsshd = toolDir + "/qsshd"
        let qssh = toolDir + "/qssh"
        _ = try ProcessRunner.shell(
            "'\(keygen)' -q -t host -f '\(dir)/ihost' -N '' && '\(keygen)' -q -t user -f '\(dir)/iid' -N '' && cp '\(dir)/iid.pub' '\(dir)/iauth'"
        )
        let (server, text) = try ProcessRunner.startServer(
            [
                qsshd, "-p", "0", "-l", "127.0.0.1", "-h", dir + "/ihost", "--authorized-keys", dir + "/iauth",
                "--max-connections", "\(sessions + 100)",
                "--keepalive", "\(keepalive)",
            ] + ProcessBench.benchLimits,
            marker: "\n"
        )
        defer { ProcessRunner.stop(server) }
        guard let r = text.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression),
            let port = Int(text[r].split(separator: ":").last ?? "")
        else { throw BenchError("qsshd: \(text)") }
        guard
            case .host(let hostKey, _) = try PublicKeyLine(
                parsing: try String(contentsOfFile: dir + "/ihost.pub", encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            ),
            case .user(let user) = try PrivateKeyFile.decode(try KeyFileIO.readPrivateKey(path: dir + "/iid"))
        else { throw BenchError("bench keys") }
        let before = ProcessBench.privateKB(server.pid)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        defer { try? group.syncShutdownGracefully() }
        var options = QNSPBootstrap.Options()
        options.keepalive = .init(interval: .seconds(keepalive), maxMissed: 3)
        let username = SessionUser.current()?.name ?? "root"
        let parameters = QNSPConnection.ClientParameters(username: username, user: user, pinnedHostKey: hostKey)
        let list = SessionList()
        var authenticated: [NIOLockedValueBox<Bool>] = []
        let batch = 50
        var opened = 0
        var failures: [String: Int] = [:]
        while opened < sessions {
            var pending: [EventLoopFuture<Void>] = []
            for i in 0..<min(batch, sessions - opened) {
                let flag = NIOLockedValueBox(false)
                authenticated.append(flag)
                // Many clients, many addresses: 100 sessions per source address in 127.0.0.0/8, as
                // a crowd of users would come (qsshd's per-source handshake budget is 256 at once).
                var sourced = options
                let n = (opened + i) / 100
                sourced.localAddress = try SocketAddress(ipAddress: "127.0.\(n / 250).\(n % 250 + 2)", port: 0)
                let connect = QNSPBootstrap.connect(
                    group: group,
                    host: "127.0.0.1",
                    port: port,
                    parameters: parameters,
                    options: sourced
                ) { ch in
                    ch.eventLoop.makeCompletedFuture {
                        _ = try SSHSessionClient.install(on: ch, username: username, authenticated: flag)
                    }
                }
                pending.append(
                    connect.flatMap { channel, handshake in handshake.map { _ in channel } }.map { list.add($0) }
                )
            }
            for f in pending {
                do { try f.wait() } catch { failures["\(error)", default: 0] += 1 }
            }
            opened += batch
            if opened % 1000 == 0 || opened >= sessions { progress("  \(min(opened, sessions)) sessions opened") }
        }
        for (why, count) in failures.sorted(by: { $0.value > $1.value }) { progress("  \(count) connections failed: \(why)") }
        let channels = list.take()
        // Wait (bounded) for the inner SSH logins to finish.
        for _ in 0..<600 where authenticated.filter({ $0.withLockedValue { $0 } }).count < channels.count {
            usleep(50_000)
        }
        let established = authenticated.filter { $0.withLockedValue { $0 } }.count
        let during = ProcessBench.privateKB(server.pid)

        // A new client while they are held.
        let client =
            "'\(qssh)' -p \(port) -i '\(dir)/iid' --known-hosts '\(dir)/ikh' -o StrictHostKeyChecking=accept-new 127.0.0.1 true </dev/null"
        var times: [Double] = []
        for _ in 0..<10 {
            let start = Clock.now
            _ = try ProcessRunner.shell(client)
            times.append(Clock.since(start))
        }
        let (median, p90) = ProcessRunner.percentiles(times)

        // Hold: keepalives (both ways) must keep every session up.
        progress(
            String(
                format: "  holding %d sessions for %.0f s (keepalive every %d s)",
                established,
                holdSeconds,
                keepalive
            )
        )
        let holdStart = Clock.now
        while Clock.since(holdStart) < holdSeconds { usleep(500_000) }
        let held = Clock.since(holdStart)
        let alive = channels.filter { $0.isActive }.count
        for channel in channels { channel.close(promise: nil) }

        // sshd with `ssh -N` clients.
        var sshdKB: Double?
        if StockSSHD.binary != nil, sshdSessions > 0 {
            let stock = try StockSSHD.start(dir: dir, extra: ["MaxSessions 10", "MaxStartups \(sshdSessions + 10)"])
            defer { stock.stop() }
            let perConnection = {
                ProcessBench.descendants(of: stock.process.pid).filter { $0.comm.hasPrefix("sshd") }.reduce(0) {
                    $0 + ProcessBench.privateKB($1.pid)
                }
            }
            let base = perConnection()
            var clients: [ChildProcess] = []
            defer {
                for c in clients {
                    kill(c.pid, SIGKILL)
                    _ = c.waitForExit()
                    for fd in [c.stdin, c.stdout, c.stderr] { close(fd) }
                }
            }
            let ssh = [
                "ssh", "-F", "/dev/null", "-p", "\(stock.port)", "-i", dir + "/ssh_id", "-o",
                "UserKnownHostsFile=\(dir)/ssh_kh",
                "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes", "-N", "127.0.0.1",
            ]
            for _ in 0..<sshdSessions {
                clients.append(
                    try ChildProcess.spawn(
                        ["/usr/bin/env"] + ssh,
                        environment: ProcessInfo.processInfo.environment,
                        directory: nil
                    )
                )
            }
            // Each logged-in connection has a privileged monitor and an unprivileged child.
            for _ in 0..<1200
            where ProcessBench.descendants(of: stock.process.pid).filter({ $0.comm.hasPrefix("sshd") }).count < 2
                * sshdSessions
            {
                usleep(50_000)
            }
            usleep(500_000)
            sshdKB = Double(perConnection() - base) / Double(sshdSessions)
        }
        return Result(
            sessions: sessions,
            established: established,
            aliveAfterHold: alive,
            holdSeconds: held,
            qsshdKBPerSession: Double(during - before) / Double(max(1, established)),
            connectExecMedian: median,
            connectExecP90: p90,
            sshdSessions: sshdSessions,
            sshdKBPerSession: sshdKB
        )
    }
}

/// Channels collected from event-loop callbacks.
final class SessionList: Sendable {
    private let channels = NIOLockedValueBox<[Channel]>([])

    func add(_ c: Channel) { channels.withLockedValue { $0.append(c) } }

    func take() -> [Channel] {
        channels.withLockedValue { list in
            defer { list = [] }
            return list
        }
    }
}
