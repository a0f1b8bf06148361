import QSSHTestSupport
import Foundation
import NIOSSH
@testable import QSSHSession
import Testing

/// OpenSSH private keys for the bridge: π for Blowfish, Blowfish, bcrypt_pbkdf, and key files
/// written by the real ssh-keygen, with and without a passphrase.
@Suite("OpenSSH key files")
struct OpenSSHKeyTests {
    @Test("π's hex fraction matches Blowfish's published P-array and S-box words")
    func piWords() {
        let w = PiHexWords.blowfish
        #expect(w.count == 1042)
        #expect(w[0] == 0x243F_6A88 && w[1] == 0x85A3_08D3 && w[17] == 0x8979_FB1B)
        #expect(w[18] == 0xD131_0BA6 && w[19] == 0x98DF_B5AC)          // S-box 1
        #expect(w[18 + 256] == 0x4B7A_70E9 && w[18 + 512] == 0xE93D_5A68 && w[18 + 768] == 0x3A39_CE37)
        #expect(w[1041] == 0x3AC3_72E6)                                // last word of S-box 4
    }

    @Test("Blowfish: Eric Young's test vectors (standard key schedule = expand0 of the key)")
    func blowfishVectors() {
        for (key, plain, cipher) in [([UInt8](repeating: 0, count: 8), (UInt32(0), UInt32(0)), (UInt32(0x4EF9_9745), UInt32(0x6198_DD78))),
                                     ([UInt8](repeating: 0xFF, count: 8), (UInt32.max, UInt32.max), (UInt32(0x5186_6FD5), UInt32(0xB85E_CB8A)))] {
            var bf = Blowfish()
            bf.expand0(key: key)
            var l = plain.0, r = plain.1
            bf.encrypt(&l, &r)
            #expect(l == cipher.0 && r == cipher.1)
        }
    }

    @Test("bcrypt_pbkdf matches the reference (answers from Python's bcrypt.kdf)")
    func bcryptPBKDF() {
        func hex(_ b: [UInt8]?) -> String { (b ?? []).map { String(format: "%02x", $0) }.joined() }
        #expect(hex(BcryptPBKDF.derive(passphrase: Array("password".utf8), salt: Array("salt".utf8), count: 48, rounds: 4))
            == "5ba4bfc60c7ac272931458407f4c1c4936ea356c55125c5a279b791d65bf9842d49d7e1b572a9052715ebfa9421e7e94")
        #expect(hex(BcryptPBKDF.derive(passphrase: Array("correct horse".utf8), salt: Array(0..<16), count: 48, rounds: 16))
            == "6bd628cd9202c5d0cb3e47dc1332be0162d3d4262dac8dac9f00998434479f36930c217fd05e33a7e77e207f680659d2")
        #expect(hex(BcryptPBKDF.derive(passphrase: [UInt8](repeating: 0x78, count: 100), salt: Array("salty".utf8), count: 7, rounds: 3)) == "50295c0fde762c")
        #expect(BcryptPBKDF.derive(passphrase: [1], salt: [1], count: 48, rounds: 0) == nil)
        #expect(BcryptPBKDF.derive(passphrase: [1], salt: [], count: 48, rounds: 16) == nil)
    }

    @Test("ssh-keygen's ed25519 keys: plain, and protected (right, wrong, missing passphrase); corrupt files refused")
    func realKeyFiles() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, pass) in [("plain", ""), ("locked", "pass phrase ✓")] {
            #expect(try Tools.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-f", dir + "/" + name, "-N", pass]).status == 0)
        }
        let plainPub = try NIOSSHPublicKey(openSSHPublicKey: String(contentsOfFile: dir + "/plain.pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(try OpenSSHPrivateKey.load(path: dir + "/plain").publicKey == plainPub)
        let lockedPub = try NIOSSHPublicKey(openSSHPublicKey: String(contentsOfFile: dir + "/locked.pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(try OpenSSHPrivateKey.load(path: dir + "/locked") { "pass phrase ✓" }.publicKey == lockedPub)
        #expect(throws: OpenSSHPrivateKey.KeyError.wrongPassphrase) { try OpenSSHPrivateKey.load(path: dir + "/locked") { "wrong" } }
        #expect(throws: OpenSSHPrivateKey.KeyError.encrypted) { try OpenSSHPrivateKey.load(path: dir + "/locked") }
        let text = try String(contentsOfFile: dir + "/plain", encoding: .utf8)
        #expect(throws: OpenSSHPrivateKey.KeyError.notOpenSSHFormat) { try OpenSSHPrivateKey.parse("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n") }
        var rng = SplitMix(seed: 31)
        for _ in 0..<300 {  // corrupted base64 bodies: an error, never a crash
            var chars = Array(text)
            let body = chars.indices.filter { chars[$0].isLetter }
            for _ in 0..<3 { chars[body[Int(rng.next() % UInt64(body.count))]] = "A" }
            _ = try? OpenSSHPrivateKey.parse(String(chars))
        }
        chmod(dir + "/plain", 0o644)
        #expect(throws: OpenSSHPrivateKey.KeyError.self) { try OpenSSHPrivateKey.load(path: dir + "/plain") }
    }

    @Test("OpenSSH known_hosts: hashed, wildcard, negated and @revoked entries")
    func knownHosts() throws {
        let key = NIOSSHPrivateKey(ed25519Key: .init()).publicKey, other = NIOSSHPrivateKey(ed25519Key: .init()).publicKey
        let line = String(openSSHPublicKey: key), otherLine = String(openSSHPublicKey: other)
        let hashed = try HashedHostName.make("server.example")
        #expect(HashedHostName.matches(hashed, name: "server.example") && !HashedHostName.matches(hashed, name: "server.exampl"))
        let file = OpenSSHKnownHosts(path: "kh", text: "\(hashed) \(line)\n*.lab,!bad.lab \(otherLine)\n@revoked * \(otherLine)\n")
        #expect(file.check(host: "server.example", port: 22, key: key) == .match)
        #expect(file.check(host: "server.example", port: 22, key: NIOSSHPrivateKey(ed25519Key: .init()).publicKey) == .mismatch(line: 1))
        #expect(file.check(host: "x.lab", port: 22, key: other) == .revoked(line: 3))
        #expect(file.check(host: "bad.lab", port: 22, key: key) == .unknown)
        #expect(file.check(host: "server.example", port: 2222, key: key) == .unknown)
    }
}
