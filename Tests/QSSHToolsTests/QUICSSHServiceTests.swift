import Foundation
import NIOCore
import NIOPosix
import QNSPBench
import QNSPQUIC
import Testing

extension ToolSuites.BridgeTests {
    /// qsshd bridging to `sshd`, once its QUIC endpoint serves ALPN ssh.
    func quicBridge(_ dir: String, sshd: StockSSHD) throws -> ToolSuites.ServeProcess {
        let server = try q.start(dir, extra: ["--bridge", "127.0.0.1:\(sshd.port)"])
        #expect(server.waitForLog("QUIC on UDP 127.0.0.1:\(server.port) (ALPN qssh/1, ssh)"), "\(server.log)")
        return server
    }

    @Test(
        "qsshd --bridge serves QUIC ALPN ssh: stock OpenSSH ssh through a QUIC stream reaches the bridged sshd (its host key checked); without --bridge, or with another ALPN, the handshake fails with no_application_protocol",
        .timeLimit(.minutes(3))
    )
    func plainSSHOverQUIC() async throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sshd = try StockSSHD.start(dir: dir)
        defer { sshd.stop() }
        let server = try quicBridge(dir, sshd: sshd)
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let relay = try await QUICStreamRelay.start(group: group, quicPort: server.port, alpn: QUICServiceRegistry.ssh)
        defer { relay.close() }
        try "[127.0.0.1]:\(relay.port) \(sshd.hostPublicKey)\n".write(toFile: dir + "/relay_known_hosts", atomically: true, encoding: .utf8)
        let ssh = ["-F", "/dev/null", "-p", "\(relay.port)", "-i", sshd.userKey, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                   "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=\(dir)/relay_known_hosts", "127.0.0.1"]
        let r = try Tools.run("/usr/bin/ssh", ssh + ["echo via-quic-$((40+2)) $SSH_CONNECTION; exit 5"])
        #expect(r.status == 5, "\(r.stderr)")
        let out = String(decoding: r.stdout, as: UTF8.self)
        #expect(out.hasPrefix("via-quic-42 127.0.0.1 ") && out.hasSuffix(" \(sshd.port)\n"), "sshd did not run it: \(out)")
        // SSH-2's host key check is what protects this service: a wrong known host key is refused.
        try "[127.0.0.1]:\(relay.port) \(try String(contentsOfFile: dir + "/ssh_id.pub", encoding: .utf8))".write(
            toFile: dir + "/relay_known_hosts", atomically: true, encoding: .utf8)
        let wrong = try Tools.run("/usr/bin/ssh", ssh + ["touch \(dir)/ran"])
        #expect(wrong.status == 255 && wrong.stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"), "\(wrong.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/ran"))
        // An ALPN qsshd has no service for fails the TLS handshake.
        let ce = try await QUICEndpoint.bind(group: group, host: "127.0.0.1", port: 0).get()
        let bridged = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
        await #expect(throws: QUICError.noApplicationProtocol) { _ = try await ce.connect(to: bridged, alpn: "bogus/1").get() }
        // Without --bridge there is no ssh service.
        let plainDir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: plainDir) }
        let plain = try q.start(plainDir)
        defer { plain.stop() }
        #expect(plain.waitForLog("QUIC on UDP 127.0.0.1:\(plain.port) (ALPN qssh/1)"), "\(plain.log)")
        let unbridged = try SocketAddress(ipAddress: "127.0.0.1", port: plain.port)
        await #expect(throws: QUICError.noApplicationProtocol) { _ = try await ce.connect(to: unbridged, alpn: QUICServiceRegistry.ssh).get() }
        try await ce.close().get()
    }

    @Test("qssh tunnel --plain-ssh as stock ssh's ProxyCommand: plain SSH-2 over QUIC ALPN ssh to qsshd --bridge's sshd (its host key checked by ssh); no service, or QNSP options, give clear errors",
          .timeLimit(.minutes(3)))
    func plainSSHTunnel() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sshd = try StockSSHD.start(dir: dir)
        defer { sshd.stop() }
        let server = try quicBridge(dir, sshd: sshd)
        defer { server.stop() }
        let qssh = try Tools.path("qssh")
        try "[127.0.0.1]:\(server.port) \(sshd.hostPublicKey)\n".write(toFile: dir + "/plain_known_hosts", atomically: true, encoding: .utf8)
        let ssh = ["-F", "/dev/null", "-p", "\(server.port)", "-i", sshd.userKey, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                   "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=\(dir)/plain_known_hosts",
                   "-o", "ProxyCommand=\(qssh) tunnel --plain-ssh -p %p %h", "127.0.0.1"]
        let r = try Tools.run("/usr/bin/ssh", ssh + ["echo plain-quic-$((40+2)) $SSH_CONNECTION; exit 6"])
        #expect(r.status == 6, "\(r.stderr)")
        let out = String(decoding: r.stdout, as: UTF8.self)
        #expect(out.hasPrefix("plain-quic-42 127.0.0.1 ") && out.hasSuffix(" \(sshd.port)\n"), "sshd did not run it: \(out)")
        // 4 MiB up and back through the stream, hash checked.
        let blob = Data(TCP.pattern(4 << 20, seed: 42))
        let hashed = try Tools.run("/usr/bin/ssh", ssh + ["sha256sum"], stdin: blob)
        let local = try Tools.run("/usr/bin/sha256sum", [], stdin: blob)
        #expect(hashed.status == 0 && hashed.stdout == local.stdout, "\(hashed.stderr)")
        // ssh still checks sshd's host key: a wrong one is refused and nothing runs.
        try "[127.0.0.1]:\(server.port) \(try String(contentsOfFile: dir + "/ssh_id.pub", encoding: .utf8))".write(
            toFile: dir + "/plain_known_hosts", atomically: true, encoding: .utf8)
        let wrong = try Tools.run("/usr/bin/ssh", ssh + ["touch \(dir)/ran"])
        #expect(wrong.status == 255 && wrong.stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"), "\(wrong.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/ran"))

        // A qsshd without --bridge has no ssh service: said plainly.
        let plainDir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: plainDir) }
        let unbridged = try q.start(plainDir)
        defer { unbridged.stop() }
        #expect(unbridged.waitForLog("QUIC on UDP 127.0.0.1:\(unbridged.port) (ALPN qssh/1)"), "\(unbridged.log)")
        let none = try Tools.run("qssh", ["tunnel", "--plain-ssh", "-p", "\(unbridged.port)", "127.0.0.1"])
        #expect(none.status == 255 && none.stderr.contains("has no plain SSH service over QUIC (ALPN ssh: qsshd serves it only with --bridge)"),
                "\(none.stderr)")
        // QNSP options do not apply to a plain stream.
        let mixed = try Tools.run("qssh", ["tunnel", "--plain-ssh", "-o", "Transport=tcp", "-p", "\(server.port)", "127.0.0.1"])
        #expect(mixed.status == 64 && mixed.stderr.contains("--plain-ssh runs plain SSH-2 over QUIC"), "\(mixed.stderr)")
    }
}
