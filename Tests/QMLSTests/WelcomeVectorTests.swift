import Testing

@testable import QMLS

/// welcome.json, passive-client-welcome.json and passive-client-handling-commit.json.
@Suite("MLS vectors: welcome and passive clients")
struct WelcomeVectorTests {
    @Test("welcome.json: decrypt group secrets and GroupInfo, verify signature and confirmation tag")
    func welcome() throws {
        var tally = VectorTally("welcome.json")
        for vector in try TestVectors.load("welcome.json") {
            let suite = vector.suite
            guard let provider = try? CipherSuiteProvider(suite) else {
                tally.skip(suite: suite.rawValue)
                continue
            }
            let check = CaseCheck("suite \(suite.rawValue)")
            check.run("welcome") {
                guard
                    case .keyPackage(let keyPackage) = try MLSMessage(mlsDecoding: try vector.hex("key_package")).body,
                    case .welcome(let welcome) = try MLSMessage(mlsDecoding: try vector.hex("welcome")).body
                else {
                    throw TestVectors.VectorError.malformed("welcome.json")
                }
                let reference = keyPackage.reference(provider: provider)
                guard let entry = welcome.secrets.first(where: { $0.newMember == reference }) else {
                    throw TestVectors.VectorError.missing("secrets entry")
                }
                let secrets = try GroupSecrets(
                    mlsDecoding: try provider.decryptWithLabel(
                        privateKey: try vector.hex("init_priv"),
                        label: "Welcome",
                        context: welcome.encryptedGroupInfo,
                        ciphertext: entry.encryptedGroupSecrets
                    )
                )
                let welcomeSecret = KeySchedule.welcomeSecret(
                    provider,
                    joinerSecret: secrets.joinerSecret,
                    pskSecret: nil
                )
                let (key, nonce) = KeySchedule.welcomeKeyAndNonce(provider, welcomeSecret: welcomeSecret)
                let info = try GroupInfo(
                    mlsDecoding: try provider.open(
                        key: key,
                        nonce: nonce,
                        aad: [],
                        ciphertext: welcome.encryptedGroupInfo
                    )
                )
                check.expect(
                    provider.verifyWithLabel(
                        publicKey: try vector.hex("signer_pub"),
                        label: "GroupInfoTBS",
                        content: info.toBeSigned,
                        signature: info.signature
                    ),
                    "GroupInfo signature"
                )
                let epochSecrets = KeySchedule.epochSecrets(
                    provider,
                    joinerSecret: secrets.joinerSecret,
                    pskSecret: nil,
                    groupContext: info.groupContext.mlsEncoded
                )
                let tag = KeySchedule.confirmationTag(
                    provider,
                    confirmationKey: epochSecrets.confirmationKey,
                    confirmedTranscriptHash: info.groupContext.confirmedTranscriptHash
                )
                check.expect(tag == info.confirmationTag, "confirmation tag")
            }
            tally.record(check)
        }
        tally.report()
    }

    /// Configuration for replaying the WG's recorded scenarios: their key packages were made
    /// at a fixed past time, and their credentials are test identities.
    static var vectorConfiguration: MLSGroupConfiguration {
        var configuration = MLSGroupConfiguration()
        configuration.validateLifetimes = false
        configuration.credentialValidator = { _, _ in true }
        return configuration
    }

    static func runPassiveClient(_ vector: [String: Any], _ check: CaseCheck) throws {
        guard case .keyPackage(let keyPackage) = try MLSMessage(mlsDecoding: try vector.hex("key_package")).body else {
            throw TestVectors.VectorError.malformed("key_package")
        }
        let provider = try CipherSuiteProvider(keyPackage.cipherSuite)
        let signingKey = try provider.signaturePrivateKey(try vector.hex("signature_priv"))
        let encryptionPriv = try vector.hex("encryption_priv")
        let initPriv = try vector.hex("init_priv")
        check.expect(signingKey.publicKey == keyPackage.leafNode.signatureKey, "signature_priv matches")
        check.expect(
            try provider.hpkePublicKey(privateKey: encryptionPriv) == keyPackage.leafNode.encryptionKey,
            "encryption_priv"
        )
        check.expect(try provider.hpkePublicKey(privateKey: initPriv) == keyPackage.initKey, "init_priv matches")
        var psks = PSKStore()
        for psk in try vector.objects("external_psks") {
            psks.addExternal(id: try psk.hex("psk_id"), secret: try psk.hex("psk"))
        }
        let bundle = KeyPackageBundle(
            keyPackage: keyPackage,
            initPrivateKey: initPriv,
            encryptionPrivateKey: encryptionPriv,
            signingKey: signingKey
        )
        var tree: RatchetTreeNodes?
        if let bytes = try vector.optionalHex("ratchet_tree") {
            tree = try RatchetTreeNodes(mlsDecoding: bytes)
        }
        var group = try MLSGroup.join(
            welcome: try vector.hex("welcome"),
            keyPackage: bundle,
            ratchetTree: tree,
            psks: psks,
            configuration: vectorConfiguration
        )
        check.expect(
            group.epochAuthenticator == (try vector.hex("initial_epoch_authenticator")),
            "initial epoch authenticator"
        )
        for (number, epoch) in try vector.objects("epochs").enumerated() {
            for proposal in epoch["proposals"] as? [String] ?? [] {
                guard let bytes = [UInt8](hex: proposal) else {
                    throw TestVectors.VectorError.malformed("proposal")
                }
                _ = try group.process(bytes)
            }
            let result = try group.process(try epoch.hex("commit"))
            guard case .commit = result else {
                check.expect(false, "epoch \(number): commit did not advance the epoch (\(result))")
                return
            }
            check.expect(
                group.epochAuthenticator == (try epoch.hex("epoch_authenticator")),
                "epoch \(number) authenticator"
            )
        }
    }

    @Test("passive-client-welcome.json: join from every Welcome and match the epoch authenticator")
    func passiveClientWelcome() throws {
        var tally = VectorTally("passive-client-welcome.json")
        for (index, vector) in try TestVectors.load("passive-client-welcome.json").enumerated() {
            let suite = vector.suite
            guard suite.isSupported else {
                tally.skip(suite: suite.rawValue)
                continue
            }
            let check = CaseCheck("passive-client-welcome[\(index)] suite \(suite.rawValue)")
            check.run("scenario") {
                try Self.runPassiveClient(vector, check)
            }
            tally.record(check)
        }
        tally.report()
    }

    @Test("passive-client-handling-commit.json: follow every commit and match every epoch authenticator")
    func passiveClientHandlingCommit() throws {
        var tally = VectorTally("passive-client-handling-commit.json")
        for (index, vector) in try TestVectors.load("passive-client-handling-commit.json").enumerated() {
            let suite = vector.suite
            guard suite.isSupported else {
                tally.skip(suite: suite.rawValue)
                continue
            }
            let check = CaseCheck("passive-client-handling-commit[\(index)] suite \(suite.rawValue)")
            check.run("scenario") {
                try Self.runPassiveClient(vector, check)
            }
            tally.record(check)
        }
        tally.report()
    }
}
