import Foundation
import QSSHSession

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private func closeDescriptor(_ fd: CInt) {
    _ = close(fd)
}

/// Start-up cost of the clients, process against process, interleaved so that machine load
/// hits every tool alike:
/// - bare start: `qssh --help` against `ssh -V` (loader, runtime start, exit);
/// - time to the first byte: from spawn until a listener on 127.0.0.1 (which never answers)
///   reads the client's first byte (start, options, config, known_hosts and key loading, the
///   first flight's key material) — for qssh with the host key known, as on every later login;
/// - connect+exec `true`: qssh to qsshd, OpenSSH to sshd with sntrup761x25519 and with
///   curve25519 key exchange.
struct StartupBench {
    let dir: String
    let toolDir: String

    struct Result {
        var bareQssh: [Double] = []
        var bareSSH: [Double] = []
        var firstByteQssh: [Double] = []
        var firstByteSSH: [Double] = []
        var execQssh: [Double] = []
        var execSntrup: [Double] = []
        var execCurve: [Double] = []
        var sshVersion = ""
        /// "static" when the Swift runtime and Foundation are linked into qssh (--static-swift-stdlib).
        var qsshRuntime = ""
    }

    func run(runs: Int) throws -> Result? {
        guard StockSSHD.binary != nil, FileManager.default.isExecutableFile(atPath: "/usr/bin/ssh") else { return nil }
        var result = Result()
        result.sshVersion = try ProcessRunner.shell("ssh -V 2>&1").output.trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        let keygen = toolDir + "/qssh-keygen"
        let qssh = toolDir + "/qssh"
        let libraries = (try? ProcessRunner.shell("ldd '\(qssh)' 2>&1").output) ?? ""
        result.qsshRuntime = libraries.contains("libswiftCore") ? "dynamic Swift runtime" : "static Swift runtime"
        try ProcessRunner.shell(
            "'\(keygen)' -q -t host -f '\(dir)/uhost' -N '' && '\(keygen)' -q -t user -f '\(dir)/uid' -N '' && cp '\(dir)/uid.pub' '\(dir)/uauth'"
        )
        let (qsshd, text) = try ProcessRunner.startServer(
            [
                toolDir + "/qsshd", "-p", "0", "-l", "127.0.0.1", "-h", dir + "/uhost", "--authorized-keys",
                dir + "/uauth",
            ]
                + ProcessBench.benchLimits,
            marker: "\n"
        )
        defer { ProcessRunner.stop(qsshd) }
        guard let r = text.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression),
            let port = Int(text[r].split(separator: ":").last ?? "")
        else { throw BenchError("qsshd: \(text)") }
        let sshd = try StockSSHD.start(dir: dir)
        defer { sshd.stop() }
        let qsshArgs = [qssh, "-p", "\(port)", "-i", dir + "/uid", "--known-hosts", dir + "/ukh", "127.0.0.1", "true"]
        let first = try ProcessRunner.shell(
            qsshArgs.dropLast(2).map { "'\($0)'" }.joined(separator: " ")
                + " -o StrictHostKeyChecking=accept-new 127.0.0.1 true </dev/null"
        )
        guard first.status == 0 else { throw BenchError("qssh to qsshd failed (status \(first.status))") }
        let ssh = [
            "/usr/bin/ssh", "-F", "/dev/null", "-p", "\(sshd.port)", "-i", sshd.userKey, "-o",
            "UserKnownHostsFile=\(dir)/ssh_kh",
            "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes", "-T",
        ]
        let sntrup = ssh + ["-o", "KexAlgorithms=sntrup761x25519-sha512@openssh.com", "127.0.0.1", "true"]
        let curve = ssh + ["-o", "KexAlgorithms=curve25519-sha256", "127.0.0.1", "true"]
        guard try Self.timed(sntrup) != nil, try Self.timed(curve) != nil else {
            throw BenchError("ssh to sshd failed")
        }

        let listener = try Listener()
        defer { listener.close() }
        // The listener poses as both servers: qssh's known_hosts names its port, ssh's does not matter.
        let qsshToListener = [
            qssh, "-p", "\(listener.port)", "-i", dir + "/uid", "--known-hosts", dir + "/lkh", "127.0.0.1", "true",
        ]
        try Self.knownHosts(from: dir + "/ukh", port: port, to: dir + "/lkh", as: listener.port)
        let sshToListener = [
            "/usr/bin/ssh", "-F", "/dev/null", "-p", "\(listener.port)", "-o", "BatchMode=yes", "-o",
            "UserKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=no", "127.0.0.1", "true",
        ]
        for _ in 0..<runs {
            if let t = try Self.timed([qssh, "--help"]) { result.bareQssh.append(t) }
            if let t = try Self.timed(["/usr/bin/ssh", "-V"]) { result.bareSSH.append(t) }
            result.firstByteQssh.append(try listener.firstByte(from: qsshToListener))
            result.firstByteSSH.append(try listener.firstByte(from: sshToListener))
            if let t = try Self.timed(qsshArgs) { result.execQssh.append(t) }
            if let t = try Self.timed(sntrup) { result.execSntrup.append(t) }
            if let t = try Self.timed(curve) { result.execCurve.append(t) }
        }
        return result
    }

    /// Wall time of one run of `argv` (stdin /dev/null-like: closed), nil when it failed.
    static func timed(_ argv: [String]) throws -> Double? {
        let start = Clock.now
        let child = try ChildProcess.spawn(argv, environment: ProcessInfo.processInfo.environment, directory: nil)
        close(child.stdin)
        ProcessRunner.drain(child.stderr)
        _ = ProcessRunner.read(child.stdout, until: nil)
        close(child.stdout)
        let status = ProcessRunner.exitStatus(child.waitForExit())
        let seconds = Clock.since(start)
        return status == 0 ? seconds : nil
    }

    /// Copies qssh's known_hosts entry for 127.0.0.1:`port` as an entry for the listener's port.
    static func knownHosts(from source: String, port: Int, to target: String, as newPort: Int) throws {
        let text = try String(contentsOfFile: source, encoding: .utf8)
        guard text.contains("\(port)") else { throw BenchError("qssh wrote no known_hosts entry for port \(port)") }
        try text.replacingOccurrences(of: ":\(port)", with: ":\(newPort)").write(
            toFile: target,
            atomically: true,
            encoding: .utf8
        )
    }

    /// A TCP listener on 127.0.0.1 that accepts one connection at a time and reads one byte.
    final class Listener {
        let fd: CInt
        let port: Int

        init() throws {
            let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw BenchError("socket failed") }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, len) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &len) == 0
                }
            }
            guard ok else {
                closeDescriptor(fd)
                throw BenchError("bind/listen failed")
            }
            self.fd = fd
            port = Int(UInt16(bigEndian: addr.sin_port))
        }

        /// Spawns `argv` and returns the seconds until its first byte arrives (then kills it).
        func firstByte(from argv: [String]) throws -> Double {
            let start = Clock.now
            let child = try ChildProcess.spawn(argv, environment: ProcessInfo.processInfo.environment, directory: nil)
            defer {
                kill(child.pid, SIGKILL)
                _ = child.waitForExit()
                for d in [child.stdin, child.stdout, child.stderr] { closeDescriptor(d) }
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 10_000) == 1 else { throw BenchError("\(argv[0]) did not connect within 10 s") }
            let conn = accept(fd, nil, nil)
            guard conn >= 0 else { throw BenchError("accept failed") }
            defer { closeDescriptor(conn) }
            var byte: UInt8 = 0
            var reader = pollfd(fd: conn, events: Int16(POLLIN), revents: 0)
            guard poll(&reader, 1, 10_000) == 1, recv(conn, &byte, 1, 0) == 1 else {
                throw BenchError("\(argv[0]) connected but sent nothing within 10 s")
            }
            return Clock.since(start)
        }

        func close() { closeDescriptor(fd) }
    }
}
