import Testing

@testable import QMLS

/// key-schedule.json, psk_secret.json, secret-tree.json and transcript-hashes.json.
@Suite("MLS vectors: key schedule, PSKs, secret tree, transcript hashes")
struct KeyScheduleVectorTests {
    @Test("key-schedule.json: every epoch's secrets, external key and exporter")
    func keySchedule() throws {
        var tally = VectorTally("key-schedule.json")
        for vector in try TestVectors.load("key-schedule.json") {
            let suite = vector.suite
            guard let provider = try? CipherSuiteProvider(suite) else {
                tally.skip(suite: suite.rawValue)
                continue
            }
            let check = CaseCheck("suite \(suite.rawValue)")
            check.run("epochs") {
                let groupID = try vector.hex("group_id")
                var initSecret = try vector.hex("initial_init_secret")
                for (epochNumber, epoch) in try vector.objects("epochs").enumerated() {
                    let context = GroupContext(
                        cipherSuite: suite,
                        groupID: groupID,
                        epoch: UInt64(epochNumber),
                        treeHash: try epoch.hex("tree_hash"),
                        confirmedTranscriptHash: try epoch.hex("confirmed_transcript_hash"),
                        extensions: []
                    )
                    let encodedContext = context.mlsEncoded
                    check.expect(encodedContext == (try epoch.hex("group_context")), "group_context \(epochNumber)")
                    let joiner = KeySchedule.joinerSecret(
                        provider,
                        initSecret: initSecret,
                        commitSecret: try epoch.hex("commit_secret"),
                        groupContext: encodedContext
                    )
                    check.expect(joiner == (try epoch.hex("joiner_secret")), "joiner_secret \(epochNumber)")
                    let psk = try epoch.hex("psk_secret")
                    let welcome = KeySchedule.welcomeSecret(provider, joinerSecret: joiner, pskSecret: psk)
                    check.expect(welcome == (try epoch.hex("welcome_secret")), "welcome_secret \(epochNumber)")
                    let secrets = KeySchedule.epochSecrets(
                        provider,
                        joinerSecret: joiner,
                        pskSecret: psk,
                        groupContext: encodedContext
                    )
                    check.expect(secrets.initSecret == (try epoch.hex("init_secret")), "init_secret")
                    check.expect(secrets.senderDataSecret == (try epoch.hex("sender_data_secret")), "sender_data")
                    check.expect(secrets.encryptionSecret == (try epoch.hex("encryption_secret")), "encryption")
                    check.expect(secrets.exporterSecret == (try epoch.hex("exporter_secret")), "exporter")
                    check.expect(secrets.epochAuthenticator == (try epoch.hex("epoch_authenticator")), "authenticator")
                    check.expect(secrets.externalSecret == (try epoch.hex("external_secret")), "external")
                    check.expect(secrets.confirmationKey == (try epoch.hex("confirmation_key")), "confirm")
                    check.expect(secrets.membershipKey == (try epoch.hex("membership_key")), "membership")
                    check.expect(secrets.resumptionPSK == (try epoch.hex("resumption_psk")), "resumption")
                    let external = try provider.deriveHPKEKeyPair(ikm: secrets.externalSecret)
                    check.expect(external.publicKey == (try epoch.hex("external_pub")), "external_pub \(epochNumber)")
                    let exporter = try epoch.object("exporter")
                    let exported = KeySchedule.export(
                        provider,
                        exporterSecret: secrets.exporterSecret,
                        label: Array(try exporter.string("label").utf8),
                        context: try exporter.hex("context"),
                        length: try exporter.int("length")
                    )
                    check.expect(exported == (try exporter.hex("secret")), "exporter secret \(epochNumber)")
                    initSecret = secrets.initSecret
                }
            }
            tally.record(check)
        }
        tally.report()
    }

    @Test("psk_secret.json: psk_secret for every list of external PSKs")
    func pskSecret() throws {
        var tally = VectorTally("psk_secret.json")
        for (index, vector) in try TestVectors.load("psk_secret.json").enumerated() {
            let suite = vector.suite
            guard let provider = try? CipherSuiteProvider(suite) else {
                tally.skip(suite: suite.rawValue)
                continue
            }
            let check = CaseCheck("psk_secret[\(index)] suite \(suite.rawValue)")
            check.run("psks") {
                var psks: [(id: PreSharedKeyID, secret: [UInt8])] = []
                for psk in try vector.objects("psks") {
                    let id = PreSharedKeyID(
                        kind: .external(pskID: try psk.hex("psk_id")),
                        nonce: try psk.hex("psk_nonce")
                    )
                    psks.append((id, try psk.hex("psk")))
                }
                let secret =
                    KeySchedule.pskSecret(provider, psks: psks) ?? [UInt8](repeating: 0, count: provider.hashLength)
                check.expect(secret == (try vector.hex("psk_secret")), "psk_secret")
            }
            tally.record(check)
        }
        tally.report()
    }

    @Test("secret-tree.json: sender data keys and every leaf's handshake and application keys")
    func secretTree() throws {
        var tally = VectorTally("secret-tree.json")
        for (index, vector) in try TestVectors.load("secret-tree.json").enumerated() {
            let suite = vector.suite
            guard let provider = try? CipherSuiteProvider(suite) else {
                tally.skip(suite: suite.rawValue)
                continue
            }
            let check = CaseCheck("secret-tree[\(index)] suite \(suite.rawValue)")
            check.run("tree") {
                let senderData = try vector.object("sender_data")
                let keys = MessageProtection.senderDataKeyAndNonce(
                    provider,
                    senderDataSecret: try senderData.hex("sender_data_secret"),
                    ciphertext: try senderData.hex("ciphertext")
                )
                check.expect(keys.key == (try senderData.hex("key")), "sender data key")
                check.expect(keys.nonce == (try senderData.hex("nonce")), "sender data nonce")
                guard let leaves = vector["leaves"] as? [[[String: Any]]] else {
                    throw TestVectors.VectorError.missing("leaves")
                }
                var tree = SecretTree(
                    encryptionSecret: try vector.hex("encryption_secret"),
                    leafCount: UInt32(leaves.count)
                )
                for (leafIndex, entries) in leaves.enumerated() {
                    let leaf = LeafIndex(UInt32(leafIndex))
                    for entry in entries {
                        let generation = UInt32(try entry.int("generation"))
                        let h = try tree.keyForTesting(leaf: leaf, kind: .handshake, generation: generation, provider)
                        let a = try tree.keyForTesting(leaf: leaf, kind: .application, generation: generation, provider)
                        check.expect(
                            h.key == (try entry.hex("handshake_key")),
                            "handshake key \(leafIndex)/\(generation)"
                        )
                        check.expect(h.nonce == (try entry.hex("handshake_nonce")), "handshake nonce")
                        check.expect(a.key == (try entry.hex("application_key")), "application key")
                        check.expect(a.nonce == (try entry.hex("application_nonce")), "application nonce")
                    }
                }
            }
            tally.record(check)
        }
        tally.report()
    }

    @Test("transcript-hashes.json: confirmation tag and both transcript hashes")
    func transcriptHashes() throws {
        var tally = VectorTally("transcript-hashes.json")
        for vector in try TestVectors.load("transcript-hashes.json") {
            let suite = vector.suite
            guard let provider = try? CipherSuiteProvider(suite) else {
                tally.skip(suite: suite.rawValue)
                continue
            }
            let check = CaseCheck("suite \(suite.rawValue)")
            check.run("hashes") {
                let content = try AuthenticatedContent(mlsDecoding: try vector.hex("authenticated_content"))
                guard case .commit = content.content.body, let tag = content.auth.confirmationTag else {
                    throw TestVectors.VectorError.missing("commit")
                }
                let confirmed = KeySchedule.confirmedTranscriptHash(
                    provider,
                    interim: try vector.hex("interim_transcript_hash_before"),
                    commit: content
                )
                check.expect(confirmed == (try vector.hex("confirmed_transcript_hash_after")), "confirmed")
                let expectedTag = KeySchedule.confirmationTag(
                    provider,
                    confirmationKey: try vector.hex("confirmation_key"),
                    confirmedTranscriptHash: confirmed
                )
                check.expect(expectedTag == tag, "confirmation tag")
                let interim = KeySchedule.interimTranscriptHash(provider, confirmed: confirmed, confirmationTag: tag)
                check.expect(interim == (try vector.hex("interim_transcript_hash_after")), "interim")
            }
            tally.record(check)
        }
        tally.report()
    }
}
