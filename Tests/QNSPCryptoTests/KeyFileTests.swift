import Foundation
import QNSPCrypto
import Testing

@Suite("Key files")
struct KeyFileTests {
    static let fastScrypt = PrivateKeyFile.ScryptParameters(logN: 10, r: 8, p: 1)

    func tempDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qnsp-keys-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("user and host keys round-trip, in clear and under a passphrase")
    func roundTrip() throws {
        let user = try UserKeyPair.generate(comment: "alice@laptop")
        let host = try HostKeyPair.generate(comment: "server")
        for contents in [PrivateKeyFile.Contents.user(user), .host(host)] {
            for pass in [nil, "correct horse"] {
                let text = try PrivateKeyFile.encode(contents, passphrase: pass, scrypt: Self.fastScrypt)
                #expect(text.hasPrefix(PrivateKeyFile.beginLine))
                let header = try PrivateKeyFile.readHeader(text)
                #expect(header.isEncrypted == (pass != nil) && header.comment == contents.comment)
                #expect(header.publicKeyLine == contents.publicKeyLine)
                let back = try PrivateKeyFile.decode(text, passphrase: pass)
                #expect(back.publicKeyLine == contents.publicKeyLine)
                if pass != nil {
                    #expect(throws: QNSPCryptoError.passphraseRequired) { _ = try PrivateKeyFile.decode(text) }
                    #expect(throws: QNSPCryptoError.wrongPassphrase) { _ = try PrivateKeyFile.decode(text, passphrase: "wrong") }
                    #expect(!text.contains(Base64.encode(user.signingKey.seed)))
                }
            }
        }
        // The decoded host key really is the same key: it decapsulates what its public half encapsulated.
        let text = try PrivateKeyFile.encode(.host(host))
        guard case .host(let back) = try PrivateKeyFile.decode(text) else { Issue.record("kind"); return }
        let (secret, enc) = try host.publicKey.kem.encapsulate()
        #expect(try back.kemKey.decapsulate(enc) == secret)
    }

    @Test("a key file whose public part was swapped is refused")
    func swappedPublicKey() throws {
        let a = try UserKeyPair.generate(), b = try UserKeyPair.generate()
        let ta = try PrivateKeyFile.encode(.user(a)), tb = try PrivateKeyFile.encode(.user(b))
        // Splice b's public key into a's file (same lengths, so the layout stays valid).
        var bytes = try Self.body(ta)
        let pb = b.publicKey.blob
        let start = bytes.count - 2 - 32 - pb.count
        bytes.replaceSubrange(start..<(start + pb.count), with: pb)
        let forged = Self.armor(bytes)
        #expect(throws: QNSPCryptoError.keyFileMalformed("public key does not match the private key")) { _ = try PrivateKeyFile.decode(forged) }
        _ = tb
    }

    @Test("private keys are written 0600 and refused when group or world can read them")
    func permissions() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/id"
        try KeyFileIO.writePrivateKey(try PrivateKeyFile.encode(.user(try .generate())), path: path)
        let mode = try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber).uint16Value
        #expect(mode & 0o777 == 0o600)
        #expect(throws: Never.self) { _ = try KeyFileIO.readPrivateKey(path: path) }
        for bad: UInt16 in [0o644, 0o640, 0o604, 0o660] {
            try FileManager.default.setAttributes([.posixPermissions: NSNumber(value: bad)], ofItemAtPath: path)
            #expect(throws: QNSPCryptoError.keyFilePermissions(path: path, mode: UInt32(bad))) { _ = try KeyFileIO.readPrivateKey(path: path) }
        }
        #expect(throws: QNSPCryptoError.self) { _ = try KeyFileIO.readPrivateKey(path: dir + "/missing") }
    }

    @Test("public key lines: format, parse, fingerprint like OpenSSH's")
    func publicLines() throws {
        let user = try UserKeyPair.generate(comment: "alice with spaces")
        let line = PublicKeyLine.user(user.publicKey, comment: user.comment)
        #expect(line.text.hasPrefix("qnsp-mldsa65 "))
        #expect(try PublicKeyLine(parsing: line.text + "\n") == line)
        let fp = user.publicKey.fingerprint
        #expect(fp.hasPrefix("SHA256:") && fp.count == 7 + 43 && !fp.contains("="))
        #expect(throws: QNSPCryptoError.self) { _ = try PublicKeyLine(parsing: "ssh-ed25519 AAAA x") }
        #expect(throws: QNSPCryptoError.self) { _ = try PublicKeyLine(parsing: "qnsp-mldsa65 !!!notbase64") }
        #expect(throws: QNSPCryptoError.self) { _ = try PublicKeyLine(parsing: "qnsp-mldsa65 AAAA") }
        #expect(throws: QNSPCryptoError.self) { _ = try PublicKeyLine(parsing: "") }
    }

    // Mutated headers can ask for scrypt at up to 1 GiB: slow on a busy machine, so the bound is generous (it only catches hangs).
    @Test("2,000 mutated key files never crash the parser", .timeLimit(.minutes(6)))
    func fuzzKeyFiles() throws {
        var state: UInt64 = 11
        func next() -> Int { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int(truncatingIfNeeded: state >> 33) }
        let body = try Self.body(try PrivateKeyFile.encode(.user(try .generate()), passphrase: "pw", scrypt: Self.fastScrypt))
        var refused = 0, changed = 0
        for i in 0..<2000 {
            var b = body
            switch i % 4 {
            case 0: b[next() % b.count] ^= UInt8(1 << (next() % 8))
            case 1: b = Array(b.prefix(next() % b.count))
            case 2: b[8 + next() % 12] = UInt8(truncatingIfNeeded: next())  // header fields
            default: b += [UInt8](repeating: UInt8(truncatingIfNeeded: next()), count: 1 + next() % 8)
            }
            if b == body { continue }  // a mutation that happened to write the same byte
            changed += 1
            do { _ = try PrivateKeyFile.decode(Self.armor(b), passphrase: "pw") } catch { refused += 1 }
        }
        #expect(changed > 1900 && refused == changed)
    }

    static func body(_ text: String) throws -> [UInt8] {
        let b64 = text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return try #require(Base64.decode(b64))
    }

    static func armor(_ b: [UInt8]) -> String {
        PrivateKeyFile.beginLine + "\n" + Base64.encode(b) + "\n" + PrivateKeyFile.endLine + "\n"
    }
}
