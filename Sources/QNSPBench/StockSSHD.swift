import Foundation
import QSSHSession

/// A stock OpenSSH sshd started for a benchmark or a test: throwaway host and user ed25519
/// keys in `dir`, 127.0.0.1 on a free port, public-key login only, Debian's sftp-server.
public struct StockSSHD {
    public let port: Int
    public let process: ChildProcess
    /// The user key sshd accepts (OpenSSH format, no passphrase) and its host public key line.
    public let userKey: String
    public let hostPublicKey: String

    /// nil when sshd or ssh-keygen is not installed.
    public static var binary: String? {
        ["/usr/sbin/sshd", "/usr/local/sbin/sshd"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Starts sshd (waits for "Server listening"). `extra` lines go into sshd_config.
    public static func start(dir: String, extra: [String] = []) throws -> StockSSHD {
        guard let sshd = binary else { throw BenchError("sshd is not installed (Debian: openssh-server)") }
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        let keys = try ProcessRunner.shell("rm -f '\(dir)/ssh_host' '\(dir)/ssh_id' && ssh-keygen -q -t ed25519 -f '\(dir)/ssh_host' -N '' && ssh-keygen -q -t ed25519 -f '\(dir)/ssh_id' -N '' && cp '\(dir)/ssh_id.pub' '\(dir)/ssh_auth' && echo ok")
        guard keys.output.contains("ok") else { throw BenchError("ssh-keygen failed") }
        let sftp = ["/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "internal-sftp"
        let port = try ProcessRunner.freePort()
        let config = ([
            "ListenAddress 127.0.0.1", "Port \(port)", "HostKey \(dir)/ssh_host", "AuthorizedKeysFile \(dir)/ssh_auth",
            "PidFile \(dir)/sshd.pid", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "StrictModes no", "UsePAM no", "MaxStartups 100", "Subsystem sftp \(sftp)",
        ] + extra).joined(separator: "\n") + "\n"
        try config.write(toFile: dir + "/sshd_config", atomically: true, encoding: .utf8)
        let (server, _) = try ProcessRunner.startServer([sshd, "-D", "-e", "-f", dir + "/sshd_config"], marker: "Server listening")
        let host = (try? String(contentsOfFile: dir + "/ssh_host.pub", encoding: .utf8)) ?? ""
        return StockSSHD(port: port, process: server, userKey: dir + "/ssh_id", hostPublicKey: host.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public func stop() { ProcessRunner.stop(process) }
}
