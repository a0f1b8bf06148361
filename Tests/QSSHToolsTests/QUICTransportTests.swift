import Foundation
import QSSHSession
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

extension ToolSuites.QSSHTests {
    @Test(
        "roaming: qssh's UDP socket is rebound (a new port) mid-transfer; the session goes on, the bytes arrive intact, only -v reports the path change",
        .timeLimit(.minutes(3))
    )
    func roamingMidTransfer() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try start(dir)
        defer { server.stop() }
        #expect(server.waitForLog("QUIC on UDP"), "\(server.log)")
        #expect(try qssh(dir, port: server.port, options: ["-o", "StrictHostKeyChecking=accept-new", "-o", "Transport=quic"], ["true"]).status == 0)
        var environment = ProcessInfo.processInfo.environment
        environment["QSSH_TEST_QUIC_REBIND"] = "SIGUSR2"
        for verbose in [true, false] {
            let blob = TCP.pattern(verbose ? 4 << 20 : 1 << 20, seed: verbose ? 3 : 5)
            var argv: [String] = [try Tools.path("qssh"), "-p", "\(server.port)", "-i", dir + "/id"]
            argv += ["--known-hosts", dir + "/known_hosts", "-o", "BatchMode=yes", "-o", "Transport=quic"]
            if verbose { argv.append("-v") }
            argv += ["127.0.0.1", "cat"]
            let child = try ChildProcess.spawn(argv, environment: environment, directory: nil)
            // Once echoed bytes come back (the session is up, QUIC carries data both ways), qssh
            // is signalled and moves to a new socket while the rest of the bytes are in flight.
            let echoing = DispatchSemaphore(value: 0)
            let writer = Thread {
                let quarter = blob.count / 4
                _ = TCP.writeAll(child.stdin, Array(blob[0..<quarter]))
                _ = echoing.wait(timeout: .now() + 60)
                kill(child.pid, SIGUSR2)
                _ = TCP.writeAll(child.stdin, Array(blob[quarter...]))
                close(child.stdin)
            }
            writer.start()
            var back = [UInt8](), chunk = [UInt8](repeating: 0, count: 65536), signalled = false
            while true {
                let n = chunk.withUnsafeMutableBytes { read(child.stdout, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                back += chunk[0..<n]
                if !signalled && back.count >= 64 << 10 {
                    signalled = true
                    echoing.signal()
                }
            }
            if !signalled { echoing.signal() }
            let status = child.waitForExit()
            let stderr = String(decoding: TCP.readToEnd(child.stderr), as: UTF8.self)
            close(child.stdout)
            close(child.stderr)
            #expect(back.count == blob.count && back == blob, "cat returned \(back.count) of \(blob.count) bytes; \(stderr)")
            #expect(status == .exited(0), "\(stderr)")
            #expect(stderr.contains("QUIC path moved to local port") == verbose, "\(stderr)")
        }
    }
}
