import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts helper programs (sshd, ssh, qnsp) for the side-by-side comparison with posix_spawn and
/// waitpid on the exact child. (Foundation's Process is avoided: on Linux its monitor thread
/// blocks in wait4 on one long-running child and then never reaps the others.)
enum ProcessRunner {
    /// A started child: its pid and the read end of its stderr (or stdout) pipe.
    struct Child {
        let pid: pid_t
        let output: Int32
    }

    /// Spawns `argv` with stdin from /dev/null, `captureFD` (1 or 2) into a pipe, the other to /dev/null,
    /// and an empty signal mask.
    static func spawn(_ argv: [String], captureFD: Int32) throws -> Child {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw BenchError("pipe failed") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], captureFD)
        posix_spawn_file_actions_addopen(&actions, captureFD == 1 ? 2 : 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        let rc = posix_spawn(&pid, argv[0], &actions, &attr, cArgs, environ)
        close(fds[1])
        guard rc == 0 else { close(fds[0]); throw BenchError("cannot start \(argv[0]): \(String(cString: strerror(rc)))") }
        return Child(pid: pid, output: fds[0])
    }

    /// Reads until `marker` appears or the pipe closes.
    static func read(_ fd: Int32, until marker: String?) -> String {
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 4096) }
            if n <= 0 { break }
            data += buf[0..<n]
            if let marker, String(decoding: data, as: UTF8.self).contains(marker) { break }
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Runs a shell command line to completion; returns exit status and stdout.
    @discardableResult
    static func shell(_ command: String) throws -> (status: Int32, output: String) {
        let child = try spawn(["/bin/sh", "-c", command], captureFD: 1)
        let text = read(child.output, until: nil)
        close(child.output)
        return (wait(child.pid), text)
    }

    /// Starts a long-running server and waits for `marker` on its stderr; returns the child and that text.
    static func startServer(_ argv: [String], marker: String) throws -> (Child, String) {
        let child = try spawn(argv, captureFD: 2)
        let text = read(child.output, until: marker)
        guard text.contains(marker) else {
            stop(child)
            throw BenchError("\(argv[0]) did not start: \(text)")
        }
        // Keep draining stderr so the server never blocks on a full pipe.
        let fd = child.output
        Thread.detachNewThread { _ = read(fd, until: nil); close(fd) }
        return (child, text)
    }

    static func stop(_ child: Child) {
        kill(child.pid, SIGTERM)
        _ = wait(child.pid)
    }

    /// A port that was free a moment ago on 127.0.0.1.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw BenchError("bind failed") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Median and 90th percentile of a sample.
    static func percentiles(_ xs: [Double]) -> (median: Double, p90: Double) {
        let s = xs.sorted()
        guard !s.isEmpty else { return (0, 0) }
        return (s[s.count / 2], s[min(s.count - 1, s.count * 9 / 10)])
    }
}
