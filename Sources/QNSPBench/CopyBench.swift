import Foundation
import NIOConcurrencyHelpers
import QSSHSession

/// File copy, process against process: `qscp` to `qsshd` and OpenSSH `scp` (SFTP mode, the
/// default since OpenSSH 9.0, with aes128-gcm) to a stock sshd, alternating, several rounds.
/// Peak memory is sampled every 20 ms over each side's whole process tree, as private memory
/// (Private_Clean + Private_Dirty from smaps_rollup: what the processes cost beyond shared libraries).
struct CopyBench {
    let dir: String
    let toolDir: String
    /// The qscp executable measured (normally toolDir's; qsshd and qssh-keygen always come from toolDir).
    let qscp: String
    /// Where the payload and both copies live (the bench's directory on disk, or a tmpfs so that
    /// the page cache and the disk do not hide the tools).
    var dataDir: String

    struct Round {
        var seconds: Double
        var clientPeakKB: Int
        /// The dirty part alone (heap, stacks, written data): what the client costs beyond the
        /// clean pages of its executables, which the kernel can drop and reread.
        var clientPeakDirtyKB: Int
        var serverPeakKB: Int
    }

    struct Result {
        var qscp: [Round]
        var scp: [Round]
        var scpVersion: String
    }

    func run(mib: Int, rounds: Int) throws -> Result? {
        guard StockSSHD.binary != nil, FileManager.default.isExecutableFile(atPath: "/usr/bin/scp") else { return nil }
        let source = dataDir + "/payload"
        try ProcessRunner.shell("head -c \(mib << 20) /dev/urandom > '\(source)'")
        let keygen = toolDir + "/qssh-keygen"
        try ProcessRunner.shell("'\(keygen)' -q -t host -f '\(dir)/chost' -N '' && '\(keygen)' -q -t user -f '\(dir)/cid' -N '' && cp '\(dir)/cid.pub' '\(dir)/cauth'")
        let (qsshd, text) = try ProcessRunner.startServer(
            [toolDir + "/qsshd", "-p", "0", "-l", "127.0.0.1", "-h", dir + "/chost", "--authorized-keys", dir + "/cauth"] + ProcessBench.benchLimits,
            marker: "\n")
        defer { ProcessRunner.stop(qsshd) }
        guard let r = text.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression),
              let port = Int(text[r].split(separator: ":").last ?? "") else { throw BenchError("qsshd: \(text)") }
        let sshd = try StockSSHD.start(dir: dir)
        defer { sshd.stop() }
        let qscp = "'\(self.qscp)' -q -P \(port) -i '\(dir)/cid' --known-hosts '\(dir)/ckh' -o StrictHostKeyChecking=accept-new '\(source)' 127.0.0.1:'\(dataDir)/to-qsshd'"
        let scp = "scp -q -F /dev/null -P \(sshd.port) -i '\(sshd.userKey)' -o UserKnownHostsFile='\(dir)/skh' -o StrictHostKeyChecking=accept-new -o BatchMode=yes -c aes128-gcm@openssh.com '\(source)' 127.0.0.1:'\(dataDir)/to-sshd'"
        let version = try ProcessRunner.shell("ssh -V 2>&1").output.trimmingCharacters(in: .whitespacesAndNewlines)
        var result = Result(qscp: [], scp: [], scpVersion: version)
        for _ in 0..<rounds {
            // Both write a new file every round (freeing the old one is not part of the timing).
            try ProcessRunner.shell("rm -f '\(dataDir)/to-qsshd'; sync")
            result.qscp.append(try timed(qscp, server: qsshd.pid))
            try ProcessRunner.shell("rm -f '\(dataDir)/to-sshd'; sync")
            result.scp.append(try timed(scp, server: sshd.process.pid))
        }
        for f in ["/to-qsshd", "/to-sshd"] {
            let same = try ProcessRunner.shell("cmp -s '\(source)' '\(dataDir)\(f)' && echo same").output
            guard same.contains("same") else { throw BenchError("copy \(f) differs from the source") }
        }
        return result
    }

    /// Which build `path` is, for the report: its size, whether the Swift runtime is linked
    /// statically or loaded as shared libraries (a shared one is shared with qsshd on this
    /// machine, so only its dirty pages count as the client's), and the linker that laid it out.
    static func describeBuild(_ path: String) -> String {
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
        let needed = (try? ProcessRunner.shell("readelf -d '\(path)' 2>/dev/null").output) ?? ""
        let comment = (try? ProcessRunner.shell("readelf -p .comment '\(path)' 2>/dev/null").output) ?? ""
        let runtime = needed.isEmpty ? "unknown (no readelf)" : needed.contains("libswiftCore.so") ? "shared" : "static (--static-swift-stdlib)"
        let sections = (try? ProcessRunner.shell("readelf -S '\(path)' 2>/dev/null").output) ?? ""
        let linker = comment.contains("LLD") ? "lld" : sections.contains("gold-version") ? "gold" : "not lld"
        let relr = sections.contains(".relr.dyn") ? ", packed relocations" : ""
        return "\(path) (\(String(format: "%.1f", Double(size) / 1e6)) MB, Swift runtime \(runtime), linked by \(linker)\(relr))"
    }

    /// Runs `command` with the shell, sampling the resident memory of its process tree and of
    /// the server's descendants (plus qsshd itself, whose own growth is part of its cost).
    func timed(_ command: String, server: pid_t) throws -> Round {
        let serverBase = ProcessBench.privateKB(server)
        let start = Clock.now
        let child = try ChildProcess.spawn(["/bin/sh", "-c", command], environment: ProcessInfo.processInfo.environment, directory: nil)
        close(child.stdin)
        ProcessRunner.drain(child.stdout)
        ProcessRunner.drain(child.stderr)
        let done = NIOLockedValueBox<ChildProcess.Termination?>(nil)
        Thread.detachNewThread { let t = child.waitForExit(); done.withLockedValue { $0 = t } }
        var clientPeak = 0, clientDirty = 0, serverPeak = 0
        while done.withLockedValue({ $0 }) == nil {
            let tree = [child.pid] + ProcessBench.descendants(of: child.pid).map(\.pid)
            clientPeak = max(clientPeak, tree.reduce(0) { $0 + ProcessBench.privateKB($1) })
            clientDirty = max(clientDirty, tree.reduce(0) { $0 + ProcessBench.privateKB($1, dirtyOnly: true) })
            let sessions = ProcessBench.descendants(of: server).reduce(0) { $0 + ProcessBench.privateKB($1.pid) }
            serverPeak = max(serverPeak, sessions + max(0, ProcessBench.privateKB(server) - serverBase))
            usleep(20_000)
        }
        let seconds = Clock.since(start)
        guard case .exited(0)? = done.withLockedValue({ $0 }) else { throw BenchError("'\(command)' failed") }
        return Round(seconds: seconds, clientPeakKB: clientPeak, clientPeakDirtyKB: clientDirty, serverPeakKB: serverPeak)
    }
}
