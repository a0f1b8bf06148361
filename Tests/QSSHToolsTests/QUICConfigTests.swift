import Foundation
import Testing

extension ToolSuites.QSSHTests {
    /// A config file for `myalias` pointing at `port`, with `transport` as its Transport line.
    func quicConfig(_ dir: String, name: String, port: Int, transport: String) throws -> String {
        let config = """
            Host myalias
                HostName 127.0.0.1
                Port \(port)
                IdentityFile \(dir)/id
                QNSPKnownHostsFile \(dir)/known_hosts
                StrictHostKeyChecking accept-new
                BatchMode yes
                Transport \(transport)
            """
        let path = dir + "/" + name
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("~/.qssh/config Transport: 'Transport quic' makes qssh use QUIC (fails against --no-quic, works against QUIC); a bad value is refused with its line")
    func configTransportOverQUIC() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        #expect(server.waitForLog("QUIC on UDP 127.0.0.1:\(server.port) (ALPN qssh/1)"), "\(server.log)")
        let quic = try quicConfig(dir, name: "config", port: server.port, transport: "quic")
        let ok = try Tools.run("qssh", ["-v", "-F", quic, "myalias", "echo via-quic"])
        #expect(ok.status == 0 && String(decoding: ok.stdout, as: UTF8.self) == "via-quic\n", "\(ok.stderr)")
        #expect(ok.stderr.contains("over QUIC (UDP, ALPN qssh/1)"), "\(ok.stderr)")
        // The command line's -o wins over the file.
        let tcp = try Tools.run("qssh", ["-v", "-F", quic, "-o", "Transport=tcp", "myalias", "echo via-tcp"])
        #expect(tcp.status == 0 && String(decoding: tcp.stdout, as: UTF8.self) == "via-tcp\n", "\(tcp.stderr)")
        #expect(!tcp.stderr.contains("over QUIC"), "\(tcp.stderr)")

        let tcpOnlyDir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: tcpOnlyDir) }
        let tcpOnly = try start(tcpOnlyDir, extra: ["--no-quic"])
        defer { tcpOnly.stop() }
        let refused = try quicConfig(tcpOnlyDir, name: "config", port: tcpOnly.port, transport: "quic")
        let failed = try Tools.run("qssh", ["-F", refused, "myalias", "true"])
        #expect(failed.status == 255 && failed.stderr.contains("over QUIC"), "\(failed.stderr)")
        let auto = try quicConfig(tcpOnlyDir, name: "auto", port: tcpOnly.port, transport: "Auto")
        let fellBack = try Tools.run("qssh", ["-v", "-F", auto, "myalias", "echo fine"])
        #expect(fellBack.status == 0 && String(decoding: fellBack.stdout, as: UTF8.self) == "fine\n", "\(fellBack.stderr)")
        #expect(fellBack.stderr.contains("using TCP"), "\(fellBack.stderr)")

        let bad = try quicConfig(dir, name: "bad", port: server.port, transport: "udp")
        let refusedValue = try Tools.run("qssh", ["-F", bad, "myalias", "true"])
        #expect(
            refusedValue.status == 255 && refusedValue.stderr.contains("bad:8: Transport must be tcp, quic or auto, not 'udp'"),
            "\(refusedValue.stderr)")
    }
}
