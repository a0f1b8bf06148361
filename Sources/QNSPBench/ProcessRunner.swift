import Foundation
import QSSHSession

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts helper programs (sshd, ssh, qnsp, qsshd) for the side-by-side comparison, with
/// `ChildProcess` (posix_spawn, waitpid on the exact child; Foundation's Process loses track of
/// children when a daemon such as sshd closes the descriptors it inherited).
package enum ProcessRunner {
    /// Reads a descriptor to its end (or until `marker` appears) and returns the text.
    static func read(_ fd: Int32, until marker: String?) -> String {
        BlockingIO.readText(fd, until: marker.map { m in { $0.contains(m) } })
    }

    /// Keeps reading `fd` on a thread of its own so the child never blocks on a full pipe.
    static func drain(_ fd: Int32) {
        Thread.detachNewThread { _ = read(fd, until: nil); close(fd) }
    }

    static func exitStatus(_ t: ChildProcess.Termination) -> Int32 {
        switch t {
        case .exited(let code): return code
        case .signaled(let signal, _): return 128 + signal
        }
    }

    /// Runs a shell command line to completion; returns exit status and stdout.
    @discardableResult
    static func shell(_ command: String) throws -> (status: Int32, output: String) {
        let child = try ChildProcess.spawn(["/bin/sh", "-c", command], environment: ProcessInfo.processInfo.environment, directory: nil)
        close(child.stdin)
        drain(child.stderr)
        let text = read(child.stdout, until: nil)
        close(child.stdout)
        return (exitStatus(child.waitForExit()), text)
    }

    /// Starts a long-running server and waits for `marker` on its stderr; returns the child and that text.
    static func startServer(_ argv: [String], marker: String) throws -> (ChildProcess, String) {
        let child = try ChildProcess.spawn(argv, environment: ProcessInfo.processInfo.environment, directory: nil)
        close(child.stdin)
        drain(child.stdout)
        let text = read(child.stderr, until: marker)
        guard text.contains(marker) else {
            stop(child)
            throw BenchError("\(argv[0]) did not start: \(text)")
        }
        drain(child.stderr)
        return (child, text)
    }

    static func stop(_ child: ChildProcess) {
        kill(child.pid, SIGTERM)
        _ = child.waitForExit()
    }

    /// A port that was free a moment ago on 127.0.0.1 (also used by the qpq tests' PostgreSQL server).
    package static func freePort() throws -> Int {
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
