import Foundation
import QNSPBench
import QNSPCrypto
import QSSHSession
import Testing

extension ToolSuites {
/// Stock OpenSSH behind and in front of qssh: a Debian sshd started on 127.0.0.1 for each test.
@Suite("OpenSSH bridge")
struct BridgeTests {
    let q = QSSHTests()

    func bridged(_ dir: String, sshd: StockSSHD) throws -> (ServeProcess, RecordingProxy) {
        let server = try q.start(dir, extra: ["--bridge", "127.0.0.1:\(sshd.port)"])
        // What crosses the network between qssh and qsshd passes through this recorder.
        return (server, try RecordingProxy(targetPort: server.port))
    }

    func qssh(_ dir: String, port: Int, _ args: [String]) throws -> Tools.Result {
        try Tools.run("qssh", ["-p", "\(port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts", "-o", "StrictHostKeyChecking=accept-new"] + args)
    }

    @Test("qssh through qsshd --bridge runs a command on a stock sshd; the QNSP wire shows no SSH banner and no command")
    func bridgeRunsCommand() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sshd = try StockSSHD.start(dir: dir)
        defer { sshd.stop() }
        let (server, wire) = try bridged(dir, sshd: sshd)
        defer { server.stop(); wire.stop() }
        try "127.0.0.1 \(sshd.hostPublicKey)\n".write(toFile: dir + "/ssh_known_hosts", atomically: true, encoding: .utf8)
        let r = try qssh(dir, port: wire.port, ["-o", "IdentityFile=\(sshd.userKey)", "-o", "UserKnownHostsFile=\(dir)/ssh_known_hosts",
                                                "127.0.0.1", "echo via-openssh-$((40+2)) $SSH_CONNECTION; exit 9"])
        #expect(r.status == 9, "\(r.stderr)")
        let out = String(decoding: r.stdout, as: UTF8.self)
        #expect(out.hasPrefix("via-openssh-42 127.0.0.1 "), "\(out)")
        #expect(out.hasSuffix(" \(sshd.port)\n"), "sshd did not run it: \(out)")
        #expect(wire.recorded.withLockedValue { $0.count } > 1000)
        for plain in ["SSH-2.0", "OpenSSH", "via-openssh", "echo via", "ssh-ed25519"] {
            #expect(!wire.contains(plain), "the QNSP wire carried '\(plain)' in clear")
        }
    }

    @Test("a passphrase-protected OpenSSH key through the bridge: unlocked via SSH_ASKPASS; never asked in batch mode")
    func protectedKeyThroughBridge() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sshd = try StockSSHD.start(dir: dir)
        defer { sshd.stop() }
        let (server, wire) = try bridged(dir, sshd: sshd)
        defer { server.stop(); wire.stop() }
        #expect(try Tools.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-f", dir + "/locked", "-N", "open sesame"]).status == 0)
        let pub = try String(contentsOfFile: dir + "/locked.pub", encoding: .utf8)
        let handle = try #require(FileHandle(forWritingAtPath: dir + "/ssh_auth"))
        handle.seekToEndOfFile()
        handle.write(Data(pub.utf8))
        handle.closeFile()
        try "#!/bin/sh\necho 'open sesame'\n".write(toFile: dir + "/askpass", atomically: true, encoding: .utf8)
        chmod(dir + "/askpass", 0o700)
        let base = [try Tools.path("qssh"), "-p", "\(wire.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts",
                    "-o", "StrictHostKeyChecking=accept-new", "-o", "IdentityFile=\(dir)/locked"]
        let unlocked = try Tools.run("/usr/bin/env", ["SSH_ASKPASS=\(dir)/askpass", "SSH_ASKPASS_REQUIRE=force"] + base + ["127.0.0.1", "echo unlocked"])
        #expect(unlocked.status == 0 && String(decoding: unlocked.stdout, as: UTF8.self) == "unlocked\n", "\(unlocked.stderr)")
        let batch = try Tools.run("/usr/bin/env", ["SSH_ASKPASS=\(dir)/askpass", "SSH_ASKPASS_REQUIRE=force"] + base + ["-o", "BatchMode=yes", "127.0.0.1", "echo no"])
        #expect(batch.status == 255 && batch.stderr.contains("passphrase-protected"), "\(batch.stderr)")
    }

    @Test("bridge refusals: no classical key, a wrong key, a contradicting known_hosts entry, sshd down — each a clear error, nothing runs")
    func bridgeRefusals() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sshd = try StockSSHD.start(dir: dir)
        let (server, wire) = try bridged(dir, sshd: sshd)
        defer { server.stop(); wire.stop() }
        try FileManager.default.createDirectory(atPath: dir + "/plain", withIntermediateDirectories: true)
        let home = dir + "/home"  // no ~/.ssh/id_ed25519 here
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let noKey = try Tools.run("/usr/bin/env", ["HOME=\(home)", try Tools.path("qssh"), "-p", "\(wire.port)", "-i", dir + "/id",
                                                    "--known-hosts", dir + "/known_hosts", "-o", "StrictHostKeyChecking=accept-new", "127.0.0.1", "touch \(dir)/ran"])
        #expect(noKey.status == 255 && noKey.stderr.contains("wants a classical key and there is none"), "\(noKey.stderr)")
        #expect(try Tools.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-f", dir + "/other", "-N", ""]).status == 0)
        let wrongKey = try qssh(dir, port: wire.port, ["-o", "IdentityFile=\(dir)/other", "127.0.0.1", "touch \(dir)/ran"])
        #expect(wrongKey.status == 255 && wrongKey.stderr.contains("refused the key(s) \(dir)/other"), "\(wrongKey.stderr)")
        let otherHost = try String(contentsOfFile: dir + "/other.pub", encoding: .utf8)
        try "127.0.0.1 \(otherHost)".write(toFile: dir + "/bad_known_hosts", atomically: true, encoding: .utf8)
        let changed = try qssh(dir, port: wire.port, ["-o", "IdentityFile=\(sshd.userKey)", "-o", "UserKnownHostsFile=\(dir)/bad_known_hosts", "127.0.0.1", "touch \(dir)/ran"])
        #expect(changed.status == 255 && changed.stderr.contains("contradicts \(dir)/bad_known_hosts:1"), "\(changed.stderr)")
        try "@revoked * \(sshd.hostPublicKey)\n".write(toFile: dir + "/revoked_known_hosts", atomically: true, encoding: .utf8)
        let revoked = try qssh(dir, port: wire.port, ["-o", "IdentityFile=\(sshd.userKey)", "-o", "UserKnownHostsFile=\(dir)/revoked_known_hosts", "127.0.0.1", "touch \(dir)/ran"])
        #expect(revoked.status == 255 && revoked.stderr.contains("@revoked"), "\(revoked.stderr)")
        // A plain qsshd (no bridge) is not held to OpenSSH's known_hosts: its inner key is its own.
        let plain = try q.start(dir + "/plain", extra: [])
        defer { plain.stop() }
        let notBridged = try Tools.run("qssh", ["-p", "\(plain.port)", "-i", dir + "/plain/id", "--known-hosts", dir + "/plain/known_hosts",
                                                "-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=\(dir)/bad_known_hosts", "127.0.0.1", "echo plain"])
        #expect(notBridged.status == 0 && String(decoding: notBridged.stdout, as: UTF8.self) == "plain\n", "\(notBridged.stderr)")
        sshd.stop()
        let down = try qssh(dir, port: wire.port, ["-o", "IdentityFile=\(sshd.userKey)", "127.0.0.1", "touch \(dir)/ran"])
        #expect(down.status == 255 && down.stderr.contains("no SSH session with 127.0.0.1"), "\(down.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/ran"))
    }

    @Test("stock OpenSSH on both ends: ssh and scp through 'qssh tunnel' to a bridged sshd; ssh through 'qssh -W' to sshd")
    func stockBothEnds() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sshd = try StockSSHD.start(dir: dir)
        defer { sshd.stop() }
        let (server, wire) = try bridged(dir, sshd: sshd)
        defer { server.stop(); wire.stop() }
        let me = try #require(SessionUser.current()?.name)
        let qssh = try Tools.path("qssh")
        let common = ["-F", "/dev/null", "-i", sshd.userKey, "-o", "UserKnownHostsFile=\(dir)/ssh_kh", "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes"]
        let tunnel = "ProxyCommand=\(qssh) tunnel -p \(wire.port) -i \(dir)/id --known-hosts \(dir)/known_hosts -o StrictHostKeyChecking=accept-new %r@%h"
        let ssh = try Tools.run("/usr/bin/ssh", common + ["-o", tunnel, "-l", me, "127.0.0.1", "echo stock-both-ends; exit 4"])
        #expect(ssh.status == 4, "\(ssh.stderr)")
        #expect(String(decoding: ssh.stdout, as: UTF8.self) == "stock-both-ends\n")
        try Data(TCP.pattern(1 << 20, seed: 8)).write(to: URL(fileURLWithPath: dir + "/payload"))
        let scp = try Tools.run("/usr/bin/scp", common + ["-o", tunnel, dir + "/payload", "\(me)@127.0.0.1:\(dir)/copied"])
        #expect(scp.status == 0, "\(scp.stderr)")
        #expect(FileManager.default.contents(atPath: dir + "/copied") == FileManager.default.contents(atPath: dir + "/payload"))
        for plain in ["SSH-2.0", "stock-both-ends"] { #expect(!wire.contains(plain), "'\(plain)' crossed the QNSP wire in clear") }

        // A plain qsshd as the gateway: OpenSSH reaches the stock sshd with -W.
        try FileManager.default.createDirectory(atPath: dir + "/gw", withIntermediateDirectories: true)
        let gateway = try q.start(dir + "/gw")
        defer { gateway.stop() }
        let jump = "ProxyCommand=\(qssh) -W %h:%p -p \(gateway.port) -i \(dir)/gw/id --known-hosts \(dir)/gw/known_hosts -o StrictHostKeyChecking=accept-new 127.0.0.1"
        let viaW = try Tools.run("/usr/bin/ssh", common + ["-o", jump, "-p", "\(sshd.port)", "-l", me, "127.0.0.1", "echo via-W"])
        #expect(viaW.status == 0, "\(viaW.stderr)")
        #expect(String(decoding: viaW.stdout, as: UTF8.self) == "via-W\n")
    }

    @Test("qscp through the bridge to the stock sshd's sftp-server")
    func qscpThroughBridge() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sshd = try StockSSHD.start(dir: dir)
        defer { sshd.stop() }
        let (server, wire) = try bridged(dir, sshd: sshd)
        defer { server.stop(); wire.stop() }
        let blob = TCP.pattern(3 << 20, seed: 12)
        try Data(blob).write(to: URL(fileURLWithPath: dir + "/up"))
        let args = ["-P", "\(wire.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts", "-o", "StrictHostKeyChecking=accept-new",
                    "-o", "IdentityFile=\(sshd.userKey)", "-q"]
        let up = try Tools.run("qscp", args + [dir + "/up", "127.0.0.1:" + dir + "/stored"])
        #expect(up.status == 0, "\(up.stderr)")
        let down = try Tools.run("qscp", args + ["127.0.0.1:" + dir + "/stored", dir + "/down"])
        #expect(down.status == 0, "\(down.stderr)")
        #expect(FileManager.default.contents(atPath: dir + "/down").map { KeyDerivation.sha256([UInt8]($0)) } == KeyDerivation.sha256(blob))
    }
}
}
