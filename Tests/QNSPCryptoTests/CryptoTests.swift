import Foundation
import QNSPCrypto
import Testing

@Suite("Crypto primitives")
struct CryptoTests {
    @Test("the fast AEAD path is linked on Linux and agrees byte for byte with swift-crypto", arguments: AEADAlgorithm.allCases)
    func aeadCrossCheck(algorithm: AEADAlgorithm) throws {
        #if os(Linux)
        #expect(AEADCipher.usesFastPath, "the BoringSSL context path is not linked: bulk throughput will suffer")
        #endif
        let key = (0..<32).map { UInt8($0) }
        let fast = try AEADCipher(algorithm: algorithm, key: key)
        let portable = try AEADCipher(algorithm: algorithm, key: key, forcePortable: true)
        for n in [0, 1, 15, 16, 752, 4096] {
            let nonce = (0..<12).map { UInt8($0 &* 3 &+ UInt8(n & 0xff)) }
            let plain = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 13) }
            let ad: [UInt8] = n % 2 == 0 ? [1, 2, 3] : []
            let a = try fast.seal(nonce: nonce, plaintext: plain, additionalData: ad)
            let b = try portable.seal(nonce: nonce, plaintext: plain, additionalData: ad)
            #expect(a == b)
            #expect(try portable.open(nonce: nonce, sealed: a, additionalData: ad) == plain)
            #expect(try fast.open(nonce: nonce, sealed: b, additionalData: ad) == plain)
            var bad = a
            bad[bad.count - 1] ^= 1
            #expect(throws: QNSPCryptoError.authenticationFailed) { _ = try fast.open(nonce: nonce, sealed: bad, additionalData: ad) }
            #expect(throws: QNSPCryptoError.authenticationFailed) { _ = try portable.open(nonce: nonce, sealed: bad, additionalData: ad) }
        }
        #expect(throws: QNSPCryptoError.invalidKeySize(what: "AEAD key", expected: 32, actual: 16)) { _ = try AEADCipher(algorithm: algorithm, key: [UInt8](repeating: 0, count: 16)) }
    }

    @Test("X-Wing: seeds are deterministic, encapsulation round-trips, another key gets another secret")
    func hybridKEM() throws {
        let seed = [UInt8](repeating: 9, count: 32)
        let a = try HybridKEM.PrivateKey(seed: seed), a2 = try HybridKEM.PrivateKey(seed: seed)
        #expect(a.publicKey == a2.publicKey && a.seed == seed)
        #expect(a.publicKey.rawRepresentation.count == HybridKEM.publicKeySize)
        let (secret, enc) = try a.publicKey.encapsulate()
        #expect(enc.count == HybridKEM.encapsulationSize && secret.count == 32)
        #expect(try a.decapsulate(enc) == secret)
        let b = try HybridKEM.PrivateKey.generate()
        #expect(try b.decapsulate(enc) != secret)  // implicit rejection
        #expect(throws: QNSPCryptoError.self) { _ = try a.decapsulate(Array(enc.dropLast())) }
        #expect(throws: QNSPCryptoError.self) { _ = try HybridKEM.PublicKey(rawRepresentation: [1, 2, 3]) }
        #expect(throws: QNSPCryptoError.self) { _ = try HybridKEM.PrivateKey(seed: [1]) }
    }

    @Test("ML-DSA-65: signatures verify only for the same message, context and key")
    func signatures() throws {
        let k = try SignatureScheme.PrivateKey.generate()
        let sig = try k.sign([1, 2, 3], context: Array("ctx".utf8))
        #expect(sig.count == SignatureScheme.signatureSize)
        #expect(k.publicKey.isValidSignature(sig, for: [1, 2, 3], context: Array("ctx".utf8)))
        #expect(!k.publicKey.isValidSignature(sig, for: [1, 2, 4], context: Array("ctx".utf8)))
        #expect(!k.publicKey.isValidSignature(sig, for: [1, 2, 3], context: Array("other".utf8)))
        #expect(!(try SignatureScheme.PrivateKey.generate()).publicKey.isValidSignature(sig, for: [1, 2, 3], context: Array("ctx".utf8)))
        #expect(!k.publicKey.isValidSignature(Array(sig.dropLast()), for: [1, 2, 3], context: Array("ctx".utf8)))
    }

    @Test("HKDF-SHA-384 matches an independent computation")
    func sha384() {
        // python3: hmac/hashlib HKDF-SHA384(salt=b"salt", ikm=b"ikm", info=b"info", L=48)
        let prk = KeyDerivation.extract(hash: .sha384, salt: Array("salt".utf8), inputKeyMaterial: Array("ikm".utf8))
        let okm = KeyDerivation.expand(hash: .sha384, pseudoRandomKey: prk, info: Array("info".utf8), length: 48)
        #expect(okm.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() == CryptoTests.sha384Expected)
    }
    static let sha384Expected = "8a4904829f7acb5fe62bfbce3ed1a2d9428bdcba65d4db11e7471f3b7ab9eaffb058cfdad0c509f3ccd90685666fa8b2"

    @Test("constant-time comparison and wiping")
    func constantTime() {
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([1, 2], [1, 2, 3]))
        var secret: [UInt8] = [1, 2, 3]
        ConstantTime.wipe(bytesOf: &secret)
        #expect(secret == [0, 0, 0])
    }
}

@Suite("Random source")
struct RandomTests {
    @Test("an extra entropy file is read and mixed in; a missing or short source is an error")
    func extraSource() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qnsp-rng-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = dir + "/qrng.bin"
        #expect(FileManager.default.createFile(atPath: good, contents: Data((0..<64).map { UInt8($0) })))
        let r = SecureRandom(extraSourcePath: good)
        let a = try r.bytes(32), b = try r.bytes(32)
        #expect(a.count == 32 && a != b)
        // Mixing is a function of both inputs: the extra bytes change the output.
        let sys = [UInt8](repeating: 1, count: 32)
        #expect(SecureRandom.mix(system: sys, extra: [UInt8](repeating: 2, count: 32), count: 32)
                != SecureRandom.mix(system: sys, extra: [UInt8](repeating: 3, count: 32), count: 32))
        #expect(SecureRandom.mix(system: sys, extra: [], count: 32) != SecureRandom.mix(system: sys, extra: [UInt8](repeating: 3, count: 32), count: 32))
        #expect(throws: QNSPCryptoError.self) { _ = try SecureRandom(extraSourcePath: dir + "/missing").bytes(32) }
        let short = dir + "/short.bin"
        #expect(FileManager.default.createFile(atPath: short, contents: Data([1, 2, 3])))
        #expect(throws: QNSPCryptoError.self) { _ = try SecureRandom(extraSourcePath: short).bytes(32) }
        // Keys generated with the extra source are valid keys.
        let user = try UserKeyPair.generate(using: r)
        let sig = try user.signingKey.sign([1], context: [])
        #expect(user.publicKey.signing.isValidSignature(sig, for: [1], context: []))
    }
}
