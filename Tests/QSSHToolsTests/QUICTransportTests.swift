import Foundation
import Testing

extension ToolSuites.QSSHTests {
    @Test(
        "qssh -o Transport=quic: exec with exit status and 16 MiB of stdin over QUIC (UDP, ALPN qssh/1); auto falls back to TCP"
    )
    func execOverQUIC() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        #expect(server.waitForLog("QUIC on UDP 127.0.0.1:\(server.port) (ALPN qssh/1)"), "\(server.log)")
        let quic = ["-v", "-o", "StrictHostKeyChecking=accept-new", "-o", "Transport=quic"]
        let r = try qssh(dir, port: server.port, options: quic, ["printf hi; echo oops >&2; exit 3"])
        #expect(r.status == 3, "\(r.stderr)")
        #expect(String(decoding: r.stdout, as: UTF8.self) == "hi")
        #expect(r.stderr.contains("over QUIC (UDP, ALPN qssh/1)") && r.stderr.contains("oops"), "\(r.stderr)")
        // The QUIC certificate was made next to the host key, private.
        for suffix in [".quic-cert.pem", ".quic-key.pem"] {
            let attrs = try FileManager.default.attributesOfItem(atPath: dir + "/host" + suffix)
            #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        }
        var blob = Data(count: 16 << 20)
        for i in stride(from: 0, to: blob.count, by: 4096) { blob[i] = UInt8(truncatingIfNeeded: i >> 12 &* 31) }
        let hash = try qssh(
            dir,
            port: server.port,
            options: ["-o", "BatchMode=yes", "-o", "Transport=quic"],
            ["sha256sum"],
            stdin: blob
        )
        #expect(hash.status == 0, "\(hash.stderr)")
        let local = try Tools.run("/usr/bin/sha256sum", [], stdin: blob)
        #expect(String(decoding: hash.stdout, as: UTF8.self) == String(decoding: local.stdout, as: UTF8.self))
        // A server without QUIC: Transport=quic fails clearly, auto falls back to TCP.
        let tcpOnlyDir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: tcpOnlyDir) }
        let tcpOnly = try start(tcpOnlyDir, extra: ["--no-quic"])
        defer { tcpOnly.stop() }
        let failed = try qssh(
            tcpOnlyDir,
            port: tcpOnly.port,
            options: ["-o", "StrictHostKeyChecking=accept-new", "-o", "Transport=quic"],
            ["true"]
        )
        #expect(failed.status == 255 && failed.stderr.contains("over QUIC"), "\(failed.stderr)")
        let auto = try qssh(
            tcpOnlyDir,
            port: tcpOnly.port,
            options: ["-v", "-o", "StrictHostKeyChecking=accept-new", "-o", "Transport=auto"],
            ["echo fine"]
        )
        #expect(auto.status == 0 && String(decoding: auto.stdout, as: UTF8.self) == "fine\n", "\(auto.stderr)")
        #expect(auto.stderr.contains("using TCP"), "\(auto.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tcpOnlyDir + "/host.quic-cert.pem"))
    }
}
