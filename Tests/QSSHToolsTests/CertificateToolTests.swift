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
            #expect(try Tools.run("qssh-keygen", ["-q", "-t", t, "-f", dir + "/" + f, "-N", "", "-C", f]).status == 0)
        }
        let signed = try Tools.run("qssh-keygen", ["-s", dir + "/ca", "-I", "alice@corp", "-n", "alice,admin", "-V", "20260101:20270101",
                                                   "-z", "7", "-O", "no-pty", "-O", "source-address=10.0.0.0/8,127.0.0.1", dir + "/id.pub"])
        #expect(signed.status == 0, "\(signed.stderr)")
        #expect(try mode(dir + "/id-cert.pub") == 0o644)
        let cert = try String(contentsOfFile: dir + "/id-cert.pub", encoding: .utf8)
        #expect(cert.hasPrefix("qnsp-mldsa65-cert ") && cert.hasSuffix(" id\n"))
        let listed = try Tools.run("qssh-keygen", ["-L", "-f", dir + "/id-cert.pub"])
        let out = String(decoding: listed.stdout, as: UTF8.self)
        let caFP = String(String(decoding: try Tools.run("qssh-keygen", ["-l", "-f", dir + "/ca.pub"]).stdout, as: UTF8.self).split(separator: " ")[1])
        let idFP = String(String(decoding: try Tools.run("qssh-keygen", ["-l", "-f", dir + "/id.pub"]).stdout, as: UTF8.self).split(separator: " ")[1])
        for expected in ["Type: qnsp-mldsa65-cert user certificate", "Public key: ML-DSA-65 \(idFP)",
                         "Signing CA: ML-DSA-65 \(caFP) (signature valid)", "Key ID: \"alice@corp\"", "Serial: 7",
                         "Valid: from 2026-01-01T00:00:00Z to 2027-01-01T00:00:00Z", "                alice\n                admin\n",
                         "                no-pty\n", "source-address 10.0.0.0/8,127.0.0.1"] {
            #expect(out.contains(expected), "missing '\(expected)' in:\n\(out)")
        }
        // A host certificate needs -h; options are for user certificates.
        let noH = try Tools.run("qssh-keygen", ["-s", dir + "/ca", "-I", "web", "-n", "web1", dir + "/host.pub"])
        #expect(noH.status == 1 && noH.stderr.contains("add -h"), "\(noH.stderr)")
        let host = try Tools.run("qssh-keygen", ["-s", dir + "/ca", "-I", "web", "-h", "-n", "web1.example.com", "-V", "+1d", dir + "/host.pub"])
        #expect(host.status == 0, "\(host.stderr)")
        #expect(String(decoding: try Tools.run("qssh-keygen", ["-L", "-f", dir + "/host-cert.pub"]).stdout, as: UTF8.self)
            .contains("Type: qnsp-xwing-mldsa65-cert host certificate"))
        // Refusals: bad option, bad interval, bad CIDR, no principals.
        for (args, message) in [(["-O", "permit-root"], "unknown option"), (["-V", "20270101:20260101"], "invalid validity"),
                                (["-O", "source-address=10.0.0.0/33"], "not an address"), (["-n", ""], "principals")] {
            var all = ["-s", dir + "/ca", "-I", "x", "-n", "alice"] + args + [dir + "/id.pub"]
            if args.first == "-n" { all = ["-s", dir + "/ca", "-I", "x"] + args + [dir + "/id.pub"] }
            let r = try Tools.run("qssh-keygen", all)
            #expect(r.status == 1 && r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        // A tampered certificate file is reported.
        var bytes = Array(cert.utf8)
        let at = cert.count / 2
        bytes[at] = bytes[at] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        try String(decoding: bytes, as: UTF8.self).write(toFile: dir + "/bad-cert.pub", atomically: true, encoding: .utf8)
        let bad = try Tools.run("qssh-keygen", ["-L", "-f", dir + "/bad-cert.pub"])
        let badOut = String(decoding: bad.stdout, as: UTF8.self)
        #expect(badOut.contains("SIGNATURE INVALID") || bad.stderr.contains("invalid certificate"), "\(badOut) \(bad.stderr)")
    }
}
}
