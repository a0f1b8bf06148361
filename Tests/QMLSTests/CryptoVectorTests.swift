import Testing

@testable import QMLS

/// crypto-basics.json: RefHash, ExpandWithLabel, DeriveSecret, DeriveTreeSecret,
/// SignWithLabel and EncryptWithLabel for every suite QMLS implements.
@Suite("MLS vectors: crypto basics")
struct CryptoVectorTests {
    @Test("crypto-basics.json: every labeled primitive for every implemented suite")
    func cryptoBasics() throws {
        var tally = VectorTally("crypto-basics.json")
        for vector in try TestVectors.load("crypto-basics.json") {
            let suite = vector.suite
            guard let provider = try? CipherSuiteProvider(suite) else {
                tally.skip(suite: suite.rawValue)
                continue
            }
            let check = CaseCheck("suite \(suite.rawValue)")
            check.run("ref_hash") {
                let v = try vector.object("ref_hash")
                let out = provider.refHash(label: try v.string("label"), value: try v.hex("value"))
                check.expect(out == (try v.hex("out")), "RefHash")
            }
            check.run("expand_with_label") {
                let v = try vector.object("expand_with_label")
                let out = provider.expandWithLabel(
                    secret: try v.hex("secret"),
                    label: try v.string("label"),
                    context: try v.hex("context"),
                    length: try v.int("length")
                )
                check.expect(out == (try v.hex("out")), "ExpandWithLabel")
            }
            check.run("derive_secret") {
                let v = try vector.object("derive_secret")
                let out = provider.deriveSecret(secret: try v.hex("secret"), label: try v.string("label"))
                check.expect(out == (try v.hex("out")), "DeriveSecret")
            }
            check.run("derive_tree_secret") {
                let v = try vector.object("derive_tree_secret")
                let out = provider.deriveTreeSecret(
                    secret: try v.hex("secret"),
                    label: try v.string("label"),
                    generation: UInt32(try v.int("generation")),
                    length: try v.int("length")
                )
                check.expect(out == (try v.hex("out")), "DeriveTreeSecret")
            }
            check.run("sign_with_label") {
                let v = try vector.object("sign_with_label")
                let pub = try v.hex("pub")
                let label = try v.string("label")
                let content = try v.hex("content")
                let given = try v.hex("signature")
                check.expect(
                    provider.verifyWithLabel(publicKey: pub, label: label, content: content, signature: given),
                    "VerifyWithLabel(given signature)"
                )
                let key = try provider.signaturePrivateKey(try v.hex("priv"))
                check.expect(key.publicKey == pub, "private key matches public key")
                let ours = try provider.signWithLabel(key, label: label, content: content)
                check.expect(
                    provider.verifyWithLabel(publicKey: pub, label: label, content: content, signature: ours),
                    "VerifyWithLabel(our signature)"
                )
                var tampered = content
                tampered.append(0)
                check.expect(
                    !provider.verifyWithLabel(publicKey: pub, label: label, content: tampered, signature: ours),
                    "signature rejects other content"
                )
            }
            check.run("encrypt_with_label") {
                let v = try vector.object("encrypt_with_label")
                let priv = try v.hex("priv")
                let label = try v.string("label")
                let context = try v.hex("context")
                let plaintext = try v.hex("plaintext")
                check.expect(try provider.hpkePublicKey(privateKey: priv) == (try v.hex("pub")), "public key")
                let given = HPKECiphertext(kemOutput: try v.hex("kem_output"), ciphertext: try v.hex("ciphertext"))
                let opened = try provider.decryptWithLabel(
                    privateKey: priv,
                    label: label,
                    context: context,
                    ciphertext: given
                )
                check.expect(opened == plaintext, "DecryptWithLabel(given)")
                let ours = try provider.encryptWithLabel(
                    publicKey: try v.hex("pub"),
                    label: label,
                    context: context,
                    plaintext: plaintext
                )
                let reopened = try provider.decryptWithLabel(
                    privateKey: priv,
                    label: label,
                    context: context,
                    ciphertext: ours
                )
                check.expect(reopened == plaintext, "DecryptWithLabel(ours)")
            }
            tally.record(check)
        }
        tally.report()
    }

    @Test("SHAKE256 matches FIPS 202 outputs (from Python hashlib)")
    func shake256() {
        #expect(SHAKE256.hash([], outputLength: 32).hex == Self.shakeEmpty)
        #expect(SHAKE256.hash(Array("abc".utf8), outputLength: 64).hex == Self.shakeABC)
        let long = [UInt8](repeating: 0x61, count: 200)
        #expect(SHAKE256.hash(long, outputLength: 300).hex == Self.shakeLong)
    }

    @Test("HPKE round trip and DeriveKeyPair determinism for every implemented suite", arguments: CipherSuite.supported)
    func hpkeRoundTrip(suite: CipherSuite) throws {
        let provider = try CipherSuiteProvider(suite)
        let ikm = [UInt8](repeating: 7, count: provider.hashLength)
        let pair = try provider.deriveHPKEKeyPair(ikm: ikm)
        #expect(try provider.deriveHPKEKeyPair(ikm: ikm) == pair)
        #expect(provider.isValidHPKEPublicKey(pair.publicKey))
        let sealed = try provider.encryptWithLabel(
            publicKey: pair.publicKey,
            label: "L",
            context: [1],
            plaintext: [9, 9]
        )
        #expect(
            try provider.decryptWithLabel(privateKey: pair.privateKey, label: "L", context: [1], ciphertext: sealed)
                == [9, 9]
        )
        #expect(throws: MLSCryptoError.decryptionFailed) {
            try provider.decryptWithLabel(privateKey: pair.privateKey, label: "L", context: [2], ciphertext: sealed)
        }
        // Our SealBase and swift-crypto's are opened by swift-crypto's OpenBase alike.
        let info = [UInt8](repeating: 5, count: 100)
        for sealed in [
            try provider.hpkeSeal(publicKey: pair.publicKey, info: info, aad: [4], plaintext: [1, 2]),
            try provider.referenceHPKESeal(publicKey: pair.publicKey, info: info, aad: [4], plaintext: [1, 2]),
        ] {
            let opened = try provider.hpkeOpen(
                privateKey: pair.privateKey,
                kemOutput: sealed.kemOutput,
                info: info,
                aad: [4],
                ciphertext: sealed.ciphertext
            )
            #expect(opened == [1, 2])
        }
        let exported = try provider.hpkeExportSender(
            publicKey: pair.publicKey,
            info: [],
            exporterContext: [3],
            length: 32
        )
        let received = try provider.hpkeExportReceiver(
            privateKey: pair.privateKey,
            kemOutput: exported.kemOutput,
            info: [],
            exporterContext: [3],
            length: 32
        )
        #expect(received == exported.secret)
        let key = try provider.generateSignatureKey()
        let signature = try provider.signWithLabel(key, label: "X", content: [1, 2, 3])
        #expect(
            provider.verifyWithLabel(publicKey: key.publicKey, label: "X", content: [1, 2, 3], signature: signature)
        )
    }
}

extension CryptoVectorTests {
    static let shakeEmpty = "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f"
    static let shakeABC =
        "483366601360a8771c6863080cc4114d8db44530f8f1e1ee4f94ea37e78b5739"
        + "d5a15bef186a5386c75744c0527e1faa9f8726e462a12a4feb06bd8801e751e4"
    static let shakeLong = """
        e49647491c9d12d125a2f75826c96f6307d2fabebcbb9fb1616d76b09499380e8bcf60f72750879140e73fb7453a979b69d2\
        5efa8de613462f108ce7f2f1d7c5e444637301336604f42850beddef9434234ccc7d84196841069a7105379ca1e5c6f79db0\
        e8a7ef1f1ac2f55a76c5c355ddcd4cbac02037a93e18b0091df839a02a53df3e5af7a2811b70369652d13019887159d3fc9e\
        8d36f0691168b3c7ec1d88a1297c11c020ffa64166889651fcb8cc9e3170973701d8cf46faee26a9f8bae301ba265a442bff\
        4c0489e97f969efe6995f6582a9b90f3fa2b1466dd0f575027fa477288e7f746e28c4821b9871f619edb84575d33b9e2c466\
        9a05cf3e3e1a9463a0621f31264847ceef151503dcfed2e05c9abcc695b4ee296305548f7390dfc905036b5cfe9be26fb170
        """
}
