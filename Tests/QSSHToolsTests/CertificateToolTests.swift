import Foundation
import Testing

extension ToolSuites {
    @Suite("qssh-keygen certificates")
    struct CertificateToolTests {
        @Test("-s/-I/-n/-V/-z/-O write KEY-cert.pub; -L prints every field and whether the CA signature holds")
        func signAndList() throws {
            let dir = try makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            for (t, f) in [("user", "ca"), ("user", "id"), ("host", "host")] {
                #expect(
                    try Tools.run("qssh-keygen", ["-q", "-t", t, "-f", dir + "/" + f, "-N", "", "-C", f]).status == 0
                )
            }
            let signed = try Tools.run(
                "qssh-keygen",
                [
                    "-s", dir + "/ca", "-I", "alice@corp", "-n", "alice,admin", "-V", "20260101:20270101",
                    "-z", "7", "-O", "no-pty", "-O", "source-address=10.0.0.0/8,127.0.0.1", dir + "/id.pub",
                ]
            )
            #expect(signed.status == 0, "\(signed.stderr)")
            #expect(try mode(dir + "/id-cert.pub") == 0o644)
            let cert = try String(contentsOfFile: dir + "/id-cert.pub", encoding: .utf8)
            #expect(cert.hasPrefix("qnsp-mldsa65-cert ") && cert.hasSuffix(" id\n"))
            let listed = try Tools.run("qssh-keygen", ["-L", "-f", dir + "/id-cert.pub"])
            let out = String(decoding: listed.stdout, as: UTF8.self)
            let caFP = String(
                String(decoding: try Tools.run("qssh-keygen", ["-l", "-f", dir + "/ca.pub"]).stdout, as: UTF8.self)
                    .split(separator: " ")[1]
            )
            let idFP = String(
                String(decoding: try Tools.run("qssh-keygen", ["-l", "-f", dir + "/id.pub"]).stdout, as: UTF8.self)
                    .split(separator: " ")[1]
            )
            for expected in [
                "Type: qnsp-mldsa65-cert user certificate", "Public key: ML-DSA-65 \(idFP)",
                "Signing CA: ML-DSA-65 \(caFP) (signature valid)", "Key ID: \"alice@corp\"", "Serial: 7",
                "Valid: from 2026-01-01T00:00:00Z to 2027-01-01T00:00:00Z",
                "                alice\n                admin\n",
                "                no-pty\n", "source-address 10.0.0.0/8,127.0.0.1",
            ] {
                #expect(out.contains(expected), "missing '\(expected)' in:\n\(out)")
            }
            // A host certificate needs -h; options are for user certificates.
            let noH = try Tools.run("qssh-keygen", ["-s", dir + "/ca", "-I", "web", "-n", "web1", dir + "/host.pub"])
            #expect(noH.status == 1 && noH.stderr.contains("add -h"), "\(noH.stderr)")
            let host = try Tools.run(
                "qssh-keygen",
                ["-s", dir + "/ca", "-I", "web", "-h", "-n", "web1.example.com", "-V", "+1d", dir + "/host.pub"]
            )
            #expect(host.status == 0, "\(host.stderr)")
            #expect(
                String(
                    decoding: try Tools.run("qssh-keygen", ["-L", "-f", dir + "/host-cert.pub"]).stdout,
                    as: UTF8.self
                )
                .contains("Type: qnsp-xwing-mldsa65-cert host certificate")
            )
            // Refusals: bad option, bad interval, bad CIDR, no principals.
            for (args, message) in [
                (["-O", "permit-root"], "unknown option"), (["-V", "20270101:20260101"], "invalid validity"),
                (["-O", "source-address=10.0.0.0/33"], "not an address"), (["-n", ""], "principals"),
            ] {
                var all = ["-s", dir + "/ca", "-I", "x", "-n", "alice"] + args + [dir + "/id.pub"]
                if args.first == "-n" { all = ["-s", dir + "/ca", "-I", "x"] + args + [dir + "/id.pub"] }
                let r = try Tools.run("qssh-keygen", all)
                #expect(r.status == 1 && r.stderr.contains(message), "\(args): \(r.stderr)")
            }
            // A tampered certificate file is reported.
            var bytes = Array(cert.utf8)
            let at = cert.count / 2
            bytes[at] = bytes[at] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            try String(decoding: bytes, as: UTF8.self).write(
                toFile: dir + "/bad-cert.pub",
                atomically: true,
                encoding: .utf8
            )
            let bad = try Tools.run("qssh-keygen", ["-L", "-f", dir + "/bad-cert.pub"])
            let badOut = String(decoding: bad.stdout, as: UTF8.self)
            #expect(
                badOut.contains("SIGNATURE INVALID") || bad.stderr.contains("invalid certificate"),
                "\(badOut) \(bad.stderr)"
            )
        }

        @Test(
            "qsshd --trusted-user-ca-keys: a valid user certificate logs in (also with the key only in the agent); expired, not yet valid, wrong principal, other CA, tampered and source-address are refused; force-command, no-pty, no-port-forwarding are enforced"
        )
        func login() throws {
            let dir = try makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            chmod(dir, 0o700)
            for (t, f) in [
                ("user", "ca"), ("user", "other-ca"), ("user", "id"), ("user", "stranger"), ("host", "host"),
            ] {
                #expect(
                    try Tools.run("qssh-keygen", ["-q", "-t", t, "-f", dir + "/" + f, "-N", "", "-C", f]).status == 0
                )
            }
            // authorized_keys does not list id: only its certificate can let it in.
            try FileManager.default.copyItem(atPath: dir + "/stranger.pub", toPath: dir + "/authorized_keys")
            let server = try ServeProcess(
                tool: "qsshd",
                arguments: [
                    "-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--authorized-keys",
                    dir + "/authorized_keys", "--trusted-user-ca-keys", dir + "/ca.pub", "-v",
                ]
            )
            defer { server.stop() }
            let user = ProcessInfo.processInfo.environment["USER"] ?? "root"
            func certify(
                ca: String = "ca",
                principals: String? = nil,
                validity: String = "-1m:+1h",
                options: [String] = [],
                serial: Int = 1
            ) throws {
                try? FileManager.default.removeItem(atPath: dir + "/id-cert.pub")
                var args = [
                    "-q", "-s", dir + "/" + ca, "-I", "test-\(serial)", "-n", principals ?? user, "-V", validity, "-z",
                    "\(serial)",
                ]
                for o in options { args += ["-O", o] }
                let r = try Tools.run("qssh-keygen", args + [dir + "/id.pub"])
                guard r.status == 0 else { throw ToolTestError(r.stderr) }
            }
            let marker = dir + "/ran"
            func qssh(_ environment: [String: String]? = nil) throws -> Tools.Result {
                try Tools.run(
                    "qssh",
                    [
                        "-v", "-p", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts",
                        "-o", "StrictHostKeyChecking=accept-new", "127.0.0.1", "touch \(marker); echo cert-ok",
                    ],
                    environment: environment
                )
            }
            func refused(_ why: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
                try? FileManager.default.removeItem(atPath: marker)
                let r = try qssh()
                #expect(
                    r.status == 255 && r.stderr.contains("permission denied"),
                    "\(r.stderr)",
                    sourceLocation: sourceLocation
                )
                #expect(server.waitForLog(why), "log lacks '\(why)': \(server.log)", sourceLocation: sourceLocation)
                #expect(!FileManager.default.fileExists(atPath: marker), sourceLocation: sourceLocation)
            }

            // No certificate: the key alone is not authorized.
            try refused("is not in \(dir)/authorized_keys")
            try certify(serial: 1)
            let ok = try qssh()
            #expect(ok.status == 0 && String(decoding: ok.stdout, as: UTF8.self) == "cert-ok\n", "\(ok.stderr)")
            #expect(ok.stderr.contains("presenting certificate \"test-1\" serial 1"), "\(ok.stderr)")
            #expect(server.waitForLog("with certificate \"test-1\" serial 1 for key SHA256:"), "\(server.log)")

            try certify(validity: "20200101:20210101", serial: 2)
            try refused("certificate \"test-2\" serial 2: certificate has expired")
            try certify(validity: "+1d:+2d", serial: 3)
            try refused("serial 3: certificate is not yet valid")
            try certify(principals: "somebody-else", serial: 4)
            try refused("serial 4: certificate is not valid for '\(user)'")
            try certify(ca: "other-ca", serial: 5)
            try refused("serial 5: certificate signed by an untrusted CA")
            try certify(options: ["source-address=10.0.0.0/8"], serial: 6)
            try refused("serial 6: source-address 10.0.0.0/8 does not include 127.0.0.1")
            // force-command runs instead of what was asked, which it sees in SSH_ORIGINAL_COMMAND.
            try certify(options: ["force-command=echo \"forced:$SSH_ORIGINAL_COMMAND\""], serial: 7)
            try? FileManager.default.removeItem(atPath: marker)
            let forced = try qssh()
            #expect(forced.status == 0, "\(forced.stderr)")
            #expect(String(decoding: forced.stdout, as: UTF8.self) == "forced:touch \(marker); echo cert-ok\n")
            #expect(!FileManager.default.fileExists(atPath: marker))
            // no-pty: the terminal request is refused (the command runs without one).
            func tty() throws -> String {
                let r = try Tools.run(
                    "qssh",
                    [
                        "-tt", "-p", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts",
                        "127.0.0.1", "tty; true",
                    ]
                )
                return String(decoding: r.stdout, as: UTF8.self)
            }
            try certify(serial: 11)
            #expect(try tty().contains("/dev/pts/"))
            try certify(options: ["no-pty"], serial: 12)
            #expect(try tty().contains("not a tty"))
            // no-port-forwarding: a direct-tcpip channel (qssh -W) is refused.
            try certify(options: ["no-port-forwarding"], serial: 13)
            _ = try Tools.run(
                "qssh",
                [
                    "-W", "127.0.0.1:\(server.port)", "-p", "\(server.port)", "-i", dir + "/id",
                    "--known-hosts", dir + "/known_hosts", "127.0.0.1",
                ]
            )
            #expect(
                server.waitForLog("refused direct-tcpip: port forwarding is not permitted for this login"),
                "\(server.log)"
            )
            try certify(options: ["source-address=10.0.0.0/8,127.0.0.0/8"], serial: 8)
            let sourceOK = try qssh()
            #expect(sourceOK.status == 0, "\(sourceOK.stderr)")

            // Tampered: the serial changed under the original signature (magic 8, kind 1, key 2 + 1952, then the u64 serial).
            try certify(serial: 9)
            let text = try String(contentsOfFile: dir + "/id-cert.pub", encoding: .utf8)
            let parts = text.split(separator: " ")
            var blob = try #require(Data(base64Encoded: String(parts[1])))
            blob[8 + 1 + 2 + 1952 + 7] ^= 0x01
            try "\(parts[0]) \(blob.base64EncodedString()) id\n".write(
                toFile: dir + "/id-cert.pub",
                atomically: true,
                encoding: .utf8
            )
            try refused("serial 8: certificate signature does not verify")

            // The key only in an agent, the certificate beside the (removed) key file.
            try certify(serial: 10)
            let socket = dir + "/agent.sock"
            let agent = Process()
            agent.executableURL = URL(fileURLWithPath: try Tools.path("qssh-agent"))
            agent.arguments = ["-D", "-a", socket]
            let out = Pipe()
            agent.standardOutput = out
            agent.standardError = FileHandle.nullDevice
            try agent.run()
            defer {
                agent.terminate()
                agent.waitUntilExit()
            }
            _ = out.fileHandleForReading.availableData
            var env = ProcessInfo.processInfo.environment
            env["QSSH_AUTH_SOCK"] = socket
            #expect(try Tools.run("qssh-add", [dir + "/id"], environment: env).status == 0)
            try FileManager.default.removeItem(atPath: dir + "/id")
            let viaAgent = try qssh(env)
            #expect(viaAgent.status == 0 && viaAgent.stderr.contains("using the agent's key"), "\(viaAgent.stderr)")
            #expect(server.waitForLog("with certificate \"test-10\" serial 10"), "\(server.log)")
        }

        @Test("--revoked-keys (key, CA, serial range, key id; re-read per login) and --authorized-principals-file")
        func revocationAndPrincipals() throws {
            let dir = try makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            chmod(dir, 0o700)
            for (t, f) in [("user", "ca"), ("user", "id"), ("user", "stranger"), ("host", "host")] {
                #expect(
                    try Tools.run("qssh-keygen", ["-q", "-t", t, "-f", dir + "/" + f, "-N", "", "-C", f]).status == 0
                )
            }
            try FileManager.default.copyItem(atPath: dir + "/stranger.pub", toPath: dir + "/authorized_keys")
            try "# ops team\nops\n".write(toFile: dir + "/principals", atomically: true, encoding: .utf8)
            let revoked = dir + "/revoked"
            try "serial 100-200\nid bad-id\n".write(toFile: revoked, atomically: true, encoding: .utf8)
            let server = try ServeProcess(
                tool: "qsshd",
                arguments: [
                    "-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys",
                    "--trusted-user-ca-keys", dir + "/ca.pub", "--revoked-keys", revoked,
                    "--authorized-principals-file", dir + "/principals",
                ]
            )
            defer { server.stop() }
            func certify(id: String = "ok", principals: String = "ops", serial: Int) throws {
                try? FileManager.default.removeItem(atPath: dir + "/id-cert.pub")
                let r = try Tools.run(
                    "qssh-keygen",
                    [
                        "-q", "-s", dir + "/ca", "-I", id, "-n", principals, "-V", "-1m:+1h", "-z", "\(serial)",
                        dir + "/id.pub",
                    ]
                )
                guard r.status == 0 else { throw ToolTestError(r.stderr) }
            }
            func qssh(_ identity: String = "id") throws -> Tools.Result {
                try Tools.run(
                    "qssh",
                    [
                        "-p", "\(server.port)", "-i", dir + "/" + identity, "--known-hosts", dir + "/known_hosts",
                        "-o", "StrictHostKeyChecking=accept-new", "127.0.0.1", "echo in",
                    ]
                )
            }
            func refused(
                _ why: String,
                identity: String = "id",
                sourceLocation: SourceLocation = #_sourceLocation
            ) throws {
                let r = try qssh(identity)
                #expect(r.status == 255, "\(r.stderr)", sourceLocation: sourceLocation)
                #expect(server.waitForLog(why), "log lacks '\(why)': \(server.log)", sourceLocation: sourceLocation)
            }
            try certify(serial: 1)
            #expect(try qssh().status == 0)
            #expect(try qssh("stranger").status == 0)
            let user = ProcessInfo.processInfo.environment["USER"] ?? "root"
            try certify(principals: user, serial: 2)
            try refused("serial 2: none of its principals is in the authorized principals file")
            try certify(serial: 150)
            try refused("serial 150: serial 150 is revoked in \(revoked)")
            try certify(id: "bad-id", serial: 3)
            try refused("serial 3: key id \"bad-id\" is revoked")
            try certify(serial: 4)
            let ca = try String(contentsOfFile: dir + "/ca.pub", encoding: .utf8)
            let id = try String(contentsOfFile: dir + "/id.pub", encoding: .utf8)
            let stranger = try String(contentsOfFile: dir + "/stranger.pub", encoding: .utf8)
            // Edits take effect at the next login.
            try ("serial 100-200\n" + id).write(toFile: revoked, atomically: true, encoding: .utf8)
            try refused("serial 4: its key is revoked")
            try ("serial 100-200\n" + ca).write(toFile: revoked, atomically: true, encoding: .utf8)
            try refused("serial 4: its CA key is revoked")
            try stranger.write(toFile: revoked, atomically: true, encoding: .utf8)
            try refused("is revoked in \(revoked)", identity: "stranger")
            #expect(try qssh().status == 0)
            // A bad file stops qsshd from starting.
            try "serial x\n".write(toFile: dir + "/bad", atomically: true, encoding: .utf8)
            let bad = try Tools.run(
                "qsshd",
                [
                    "-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys",
                    "--revoked-keys", dir + "/bad",
                ]
            )
            #expect(bad.status != 0 && bad.stderr.contains("bad serial"), "\(bad.stderr)")
        }
    }
}
