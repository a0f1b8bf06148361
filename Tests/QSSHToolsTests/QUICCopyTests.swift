import Foundation
import QSSHSession
import Testing

extension ToolSuites.QSSHTests {
    @Test("qscp -o Transport=quic copies a file intact over QUIC (and fails against a --no-quic server); qssh tunnel -o Transport=quic carries OpenSSH")
    func copyAndTunnelOverQUIC() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        #expect(server.waitForLog("QUIC on UDP 127.0.0.1:\(server.port) (ALPN qssh/1)"), "\(server.log)")
        var blob = Data(count: 3 << 20)
        for i in stride(from: 0, to: blob.count, by: 1024) { blob[i] = UInt8(truncatingIfNeeded: i >> 10 &* 37) }
        try blob.write(to: URL(fileURLWithPath: dir + "/src"))
        func qscp(_ d: String, port: Int, _ args: [String]) throws -> Tools.Result {
            try Tools.run("qscp", ["-F", "none", "-P", "\(port)", "-i", d + "/id", "--known-hosts", d + "/known_hosts",
                                   "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes", "-o", "Transport=quic", "-q"] + args)
        }
        let up = try qscp(dir, port: server.port, [dir + "/src", "127.0.0.1:" + dir + "/dst"])
        #expect(up.status == 0, "\(up.stderr)")
        let sums = try Tools.run("/usr/bin/sha256sum", [dir + "/src", dir + "/dst"])
        let lines = String(decoding: sums.stdout, as: UTF8.self).split(separator: "\n").map { $0.split(separator: " ").first }
        #expect(lines.count == 2 && lines[0] != nil && lines[0] == lines[1], "\(String(decoding: sums.stdout, as: UTF8.self))")

        let tcpOnlyDir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: tcpOnlyDir) }
        let tcpOnly = try start(tcpOnlyDir, extra: ["--no-quic"])
        defer { tcpOnly.stop() }
        try blob.write(to: URL(fileURLWithPath: tcpOnlyDir + "/src"))
        let refused = try qscp(tcpOnlyDir, port: tcpOnly.port, [tcpOnlyDir + "/src", "127.0.0.1:" + tcpOnlyDir + "/dst"])
        #expect(refused.status != 0 && refused.stderr.contains("over QUIC"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tcpOnlyDir + "/dst"))

        // qssh tunnel: OpenSSH's ssh through a QUIC carrier; a --no-quic server refuses it.
        func tunnel(_ d: String, port: Int) throws -> String {
            "\(try Tools.path("qssh")) tunnel -v -F none -p \(port) -i \(d)/id --known-hosts \(d)/known_hosts"
                + " -o StrictHostKeyChecking=accept-new -o BatchMode=yes -o Transport=quic %r@%h"
        }
        let me = try #require(SessionUser.current()?.name)
        let ssh = try Tools.run("/usr/bin/ssh", ["-F", "/dev/null", "-o", "ProxyCommand=\(try tunnel(dir, port: server.port))",
                                                 "-o", "UserKnownHostsFile=\(dir)/ssh_kh", "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes",
                                                 "-l", me, "127.0.0.1", "echo tunnel-quic"])
        #expect(ssh.status == 0 && String(decoding: ssh.stdout, as: UTF8.self) == "tunnel-quic\n", "\(ssh.stderr)")
        #expect(ssh.stderr.contains("qssh tunnel: connected to 127.0.0.1 port \(server.port) over QUIC"), "\(ssh.stderr)")
        let noQUIC = try Tools.run("/usr/bin/ssh", ["-F", "/dev/null", "-o", "ProxyCommand=\(try tunnel(tcpOnlyDir, port: tcpOnly.port))",
                                                    "-o", "UserKnownHostsFile=\(tcpOnlyDir)/ssh_kh", "-o", "StrictHostKeyChecking=accept-new",
                                                    "-o", "BatchMode=yes", "-l", me, "127.0.0.1", "true"])
        #expect(noQUIC.status == 255 && noQUIC.stderr.contains("over QUIC"), "\(noQUIC.stderr)")
    }
}
