import Foundation
import Testing

extension ToolSuites {
    @Suite("host certificates and @cert-authority")
    struct HostCertificateToolTests {
        @Test(
            "a host certified by a CA in a known_hosts @cert-authority line is accepted without a prompt and not pinned; wrong name, another CA, expired, missing certificate and a @revoked CA are refused; qsshd refuses a certificate of another key"
        )
        func certAuthority() throws {
            let dir = try makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            chmod(dir, 0o700)
            for (t, f) in [("user", "ca"), ("user", "other-ca"), ("user", "id"), ("host", "host"), ("host", "other")] {
                #expect(try Tools.run("qssh-keygen", ["-q", "-t", t, "-f", dir + "/" + f, "-N", "", "-C", f]).status == 0)
            }
            try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: dir + "/authorized_keys")
            let caLine = try String(contentsOfFile: dir + "/ca.pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let knownHosts = dir + "/known_hosts"
            let authority = "# our fleet\n@cert-authority [127.0.0.*]:*,!*.untrusted \(caLine)\n"
            func certify(_ key: String = "host", ca: String = "ca", principals: String = "127.0.0.1", validity: String = "-1m:+1h", serial: Int = 1) throws {
                try? FileManager.default.removeItem(atPath: dir + "/\(key)-cert.pub")
                let r = try Tools.run(
                    "qssh-keygen",
                    ["-q", "-s", dir + "/" + ca, "-h", "-I", "web-\(serial)", "-n", principals, "-V", validity, "-z", "\(serial)", dir + "/\(key).pub"])
                guard r.status == 0 else { throw ToolTestError(r.stderr) }
            }
            func serve(_ extra: [String] = []) throws -> ServeProcess {
                try ServeProcess(
                    tool: "qsshd",
                    arguments: ["-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys", "-v"] + extra)
            }
            func qssh(_ port: Int) throws -> Tools.Result {
                try Tools.run(
                    "qssh",
                    ["-v", "-o", "BatchMode=yes", "-p", "\(port)", "-i", dir + "/id", "--known-hosts", knownHosts, "127.0.0.1", "echo certified"])
            }
            func refused(_ port: Int, _ why: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
                let r = try qssh(port)
                #expect(r.status == 255 && r.stderr.contains(why) && r.stderr.contains("refusing to connect"), "\(r.stderr)", sourceLocation: sourceLocation)
                #expect(r.stdout.isEmpty, sourceLocation: sourceLocation)
                #expect(try String(contentsOfFile: knownHosts, encoding: .utf8) == authority, "a refused host was pinned", sourceLocation: sourceLocation)
            }
            try authority.write(toFile: knownHosts, atomically: true, encoding: .utf8)

            // Accepted: HOSTKEY-cert.pub is picked up by qsshd; batch mode, so a prompt would fail.
            try certify(serial: 1)
            do {
                let server = try serve()
                defer { server.stop() }
                #expect(server.waitForLog("host certificate \(dir)/host-cert.pub: 'web-1' serial 1 for 127.0.0.1"), "\(server.log)")
                let ok = try qssh(server.port)
                #expect(ok.status == 0 && String(decoding: ok.stdout, as: UTF8.self) == "certified\n", "\(ok.stderr)")
                #expect(ok.stderr.contains("host certificate 'web-1' serial 1 for '127.0.0.1' signed by CA SHA256:"), "\(ok.stderr)")
                #expect(try String(contentsOfFile: knownHosts, encoding: .utf8) == authority, "a certified host was pinned")
            }
            // Refused: another name, an expired certificate, none at all, a revoked CA.
            try certify(principals: "web.example.com", serial: 2)
            do {
                let server = try serve()
                defer { server.stop() }
                try refused(server.port, "certificate 'web-2' serial 2 is refused: certificate is not valid for '127.0.0.1'")
            }
            try certify(ca: "other-ca", serial: 6)
            do {
                let server = try serve()
                defer { server.stop() }
                try refused(server.port, "certificate 'web-6' serial 6 is refused: certificate signed by an untrusted CA")
            }
            try certify(validity: "20200101:20210101", serial: 3)
            do {
                let server = try serve()
                defer { server.stop() }
                #expect(server.waitForLog("host-cert.pub has expired"), "\(server.log)")
                try refused(server.port, "serial 3 is refused: certificate has expired")
            }
            try FileManager.default.removeItem(atPath: dir + "/host-cert.pub")
            do {
                let server = try serve()
                defer { server.stop() }
                try refused(server.port, "presented no host certificate")
            }
            try certify(serial: 4)
            do {
                let server = try serve()
                defer { server.stop() }
                let revoked = authority + "@revoked * \(caLine)\n"
                try revoked.write(toFile: knownHosts, atomically: true, encoding: .utf8)
                let r = try qssh(server.port)
                // A revoked CA vouches for nobody: the host is then unknown, and batch mode refuses it.
                #expect(r.status == 255 && r.stdout.isEmpty, "\(r.stderr)")
                #expect(try String(contentsOfFile: knownHosts, encoding: .utf8) == revoked)
                try authority.write(toFile: knownHosts, atomically: true, encoding: .utf8)
            }
            // qsshd refuses a certificate that names another host key, with both fingerprints.
            try certify("other", serial: 5)
            let bad = try Tools.run("qsshd", ["-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--host-certificate", dir + "/other-cert.pub"])
            #expect(bad.status != 0 && bad.stderr.contains("certifies another key"), "\(bad.stderr)")
        }
    }
}
