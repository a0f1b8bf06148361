import Testing

@testable import QMLS

/// The group API end to end: creation, adds, removes, updates, PSKs, external commits,
/// application messages, serialization.
@Suite("MLS group")
struct GroupTests {
    static let suites: [CipherSuite] = [.x25519Aes128Sha256Ed25519, .xwingAes256Sha384MLDSA65]

    @Test("three members: add, message, update, remove", arguments: suites)
    func basicLifecycle(suite: CipherSuite) throws {
        var harness = try GroupHarness(suite: suite)
        try harness.add(2, by: "m0")
        harness.expectAgreement()
        var sender = try #require(harness.members["m1"])
        let ciphertext = try sender.encrypt(Array("hello".utf8), authenticatedData: [7])
        harness.members["m1"] = sender
        for name in ["m0", "m2"] {
            var receiver = try #require(harness.members[name])
            let result = try receiver.process(ciphertext)
            #expect(
                result
                    == .application(
                        ApplicationMessage(
                            sender: sender.ownLeaf,
                            data: Array("hello".utf8),
                            authenticatedData: [7],
                            epoch: 1
                        )
                    )
            )
            harness.members[name] = receiver
        }
        try harness.commit(by: "m2")
        harness.expectAgreement()
        try harness.remove(["m1"], by: "m0")
        harness.expectAgreement()
        #expect(harness.members.count == 2)
    }

    @Test("an Update proposal committed by another member gives the proposer its new leaf key", arguments: suites)
    func updateProposal(suite: CipherSuite) throws {
        var harness = try GroupHarness(suite: suite)
        try harness.add(3, by: "m0")
        var proposer = try #require(harness.members["m2"])
        let proposal = try proposer.proposeUpdate()
        harness.members["m2"] = proposer
        for name in harness.names where name != "m2" {
            var member = try #require(harness.members[name])
            guard case .proposal = try member.process(proposal) else {
                Issue.record("not a proposal")
                return
            }
            harness.members[name] = member
        }
        var options = CommitOptions()
        options.forcePath = false
        let output = try harness.commit(by: "m1", options)
        #expect(output.summary.updated.count == 1)
        harness.expectAgreement()
        // The proposer must still be able to decrypt the next commit's path secrets.
        try harness.commit(by: "m3")
        harness.expectAgreement()
    }

    @Test("PublicMessage handshakes, external and resumption PSKs", arguments: suites)
    func publicMessagesAndPSKs(suite: CipherSuite) throws {
        var configuration = MLSGroupConfiguration()
        configuration.handshakeWireFormat = .publicMessage
        var harness = try GroupHarness(suite: suite, configuration: configuration)
        try harness.add(2, by: "m0")
        let pskID: [UInt8] = [1, 2, 3]
        let pskSecret = [UInt8](repeating: 9, count: 32)
        for name in harness.names {
            harness.members[name]?.addExternalPSK(id: pskID, secret: pskSecret)
        }
        var options = CommitOptions()
        let creator = try #require(harness.members["m0"])
        options.preSharedKeys = [creator.externalPSK(id: pskID), creator.resumptionPSKID(epoch: creator.epoch)]
        try harness.commit(by: "m0", options)
        harness.expectAgreement()
        // A member without the PSK cannot process a commit that names it.
        var lacking = try #require(harness.members["m1"])
        lacking.pskStore = [:]
        var committer = try #require(harness.members["m2"])
        var again = CommitOptions()
        again.preSharedKeys = [committer.externalPSK(id: pskID)]
        let output = try committer.commit(again)
        #expect(throws: MLSError.self) {
            try lacking.process(output.commit)
        }
    }

    @Test("an external commit joins the group and everyone agrees", arguments: suites)
    func externalCommit(suite: CipherSuite) throws {
        var harness = try GroupHarness(suite: suite)
        try harness.add(2, by: "m0")
        let info = try #require(harness.members["m1"]).groupInfoMessage()
        let key = try harness.provider.generateSignatureKey()
        let (joined, commit) = try MLSGroup.joinExternally(
            groupInfo: info,
            credential: .basic(identity: Array("outsider".utf8)),
            signingKey: key
        )
        for name in harness.names {
            var member = try #require(harness.members[name])
            guard case .commit(let summary) = try member.process(commit) else {
                Issue.record("external commit not processed")
                return
            }
            #expect(summary.committer == .newMemberCommit)
            harness.members[name] = member
        }
        harness.members["outsider"] = joined
        harness.expectAgreement()
        try harness.commit(by: "outsider")
        harness.expectAgreement()
        // Resync: m2 lost its state and rejoins, removing its old leaf in the same commit.
        let oldLeaf = try #require(harness.members["m2"]).ownLeaf
        let rejoinInfo = try #require(harness.members["m0"]).groupInfoMessage()
        let (rejoined, resync) = try MLSGroup.joinExternally(
            groupInfo: rejoinInfo,
            credential: .basic(identity: Array("m2".utf8)),
            signingKey: try harness.provider.generateSignatureKey(),
            removing: oldLeaf
        )
        harness.members["m2"] = nil
        for name in harness.names {
            var member = try #require(harness.members[name])
            guard case .commit(let summary) = try member.process(resync) else {
                Issue.record("resync commit not processed")
                return
            }
            #expect(summary.removed == [oldLeaf])
            harness.members[name] = member
        }
        harness.members["m2"] = rejoined
        harness.expectAgreement()
    }

    @Test("a restored group keeps working: it decrypts, commits and follows commits", arguments: suites)
    func serializationRoundTrip(suite: CipherSuite) throws {
        var harness = try GroupHarness(suite: suite)
        try harness.add(3, by: "m0")
        var sender = try #require(harness.members["m3"])
        let early = try sender.encrypt([1])
        let late = try sender.encrypt([2])
        harness.members["m3"] = sender
        var m1 = try #require(harness.members["m1"])
        _ = try m1.process(late)
        let bytes = m1.serialized()
        var restored = try MLSGroup(serialized: bytes)
        #expect(restored.serialized() == bytes)
        #expect(restored.epochAuthenticator == m1.epochAuthenticator)
        let result = try restored.process(early)
        #expect(
            result
                == .application(ApplicationMessage(sender: sender.ownLeaf, data: [1], authenticatedData: [], epoch: 1))
        )
        harness.members["m1"] = restored
        try harness.commit(by: "m1")
        harness.expectAgreement()
        try harness.commit(by: "m2")
        harness.expectAgreement()
        #expect(throws: MLSError.self) {
            try MLSGroup(serialized: Array(bytes.dropLast()))
        }
        var wrongVersion = bytes
        wrongVersion[5] = 9
        #expect(throws: MLSError.self) {
            try MLSGroup(serialized: wrongVersion)
        }
    }

    @Test("Welcome without the ratchet_tree extension joins with the tree given out of band", arguments: suites)
    func welcomeWithoutTree(suite: CipherSuite) throws {
        var configuration = MLSGroupConfiguration()
        configuration.ratchetTreeInWelcome = false
        var harness = try GroupHarness(suite: suite, configuration: configuration)
        try harness.add(1, by: "m0")
        var creator = try #require(harness.members["m0"])
        let bundle = try harness.keyPackage("late")
        var options = CommitOptions()
        options.adds = [bundle.keyPackage]
        let output = try creator.commit(options)
        try creator.mergePendingCommit()
        let welcome = try #require(output.welcome)
        #expect(throws: MLSError.self) {
            try MLSGroup.join(welcome: welcome, keyPackage: bundle)
        }
        let joined = try MLSGroup.join(welcome: welcome, keyPackage: bundle, ratchetTree: creator.tree.wireNodes)
        #expect(joined.epochAuthenticator == creator.epochAuthenticator)
    }
}

/// ReInit and branching with resumption PSKs.
@Suite("MLS group: reinit and branch")
struct LinkedGroupTests {
    @Test("a committed ReInit freezes the group; the new group joins everyone with a reinit PSK")
    func reinit() throws {
        var harness = try GroupHarness(suite: .x25519Aes128Sha256Ed25519)
        try harness.add(2, by: "m0")
        let reinit = ReInit(
            groupID: Array("reinit group".utf8),
            version: .mls10,
            cipherSuite: .x25519Aes128Sha256Ed25519,
            extensions: []
        )
        var options = CommitOptions()
        options.reinit = reinit
        try harness.commit(by: "m1", options)
        for (_, group) in harness.members {
            #expect(group.status == .waitingForReInit(reinit))
        }
        var frozen = try #require(harness.members["m0"])
        #expect(throws: MLSError.self) {
            try frozen.encrypt([1])
        }
        let bundles = try ["m1", "m2"].map { try harness.keyPackage($0) }
        let (newGroup, output) = try frozen.reinitialize(keyPackages: bundles.map(\.keyPackage))
        #expect(newGroup.epoch == 1)
        #expect(newGroup.groupID == reinit.groupID)
        let welcome = try #require(output.welcome)
        for (name, bundle) in zip(["m1", "m2"], bundles) {
            let old = try #require(harness.members[name])
            var psks = PSKStore()
            psks.addResumption(from: old)
            #expect(throws: MLSError.self) {
                try MLSGroup.join(welcome: welcome, keyPackage: bundle, psks: psks)
            }
            let joined = try MLSGroup.join(welcome: welcome, keyPackage: bundle, psks: psks, linkedGroup: old)
            #expect(joined.epochAuthenticator == newGroup.epochAuthenticator)
        }
    }

    @Test("a branch starts a subgroup linked by a branch PSK")
    func branch() throws {
        var harness = try GroupHarness(suite: .x25519Aes128Sha256Ed25519)
        try harness.add(3, by: "m0")
        let founder = try #require(harness.members["m2"])
        let bundle = try harness.keyPackage("m3")
        let (subgroup, output) = try founder.branch(groupID: Array("sub".utf8), keyPackages: [bundle.keyPackage])
        let old = try #require(harness.members["m3"])
        var psks = PSKStore()
        psks.addResumption(from: old)
        let joined = try MLSGroup.join(
            welcome: try #require(output.welcome),
            keyPackage: bundle,
            psks: psks,
            linkedGroup: old
        )
        #expect(joined.epochAuthenticator == subgroup.epochAuthenticator)
        #expect(joined.members.count == 2)
    }
}

/// Application messages that arrive after the commit that ended their epoch.
@Suite("MLS group: late messages")
struct LateMessageTests {
    @Test("a message of the previous epoch decrypts after the commit, also after a restore")
    func previousEpoch() throws {
        var harness = try GroupHarness(suite: .x25519Aes128Sha256Ed25519)
        try harness.add(2, by: "m0")
        var sender = try #require(harness.members["m1"])
        let late = try sender.encrypt(Array("sent before the commit".utf8))
        let later = try sender.encrypt(Array("also before".utf8))
        harness.members["m1"] = sender
        try harness.commit(by: "m0")
        var receiver = try #require(harness.members["m2"])
        let result = try receiver.process(late)
        #expect(
            result
                == .application(
                    ApplicationMessage(
                        sender: sender.ownLeaf,
                        data: Array("sent before the commit".utf8),
                        authenticatedData: [],
                        epoch: 1
                    )
                )
        )
        let replay = #expect(throws: MLSError.self) {
            try receiver.process(late)
        }
        guard case .ratchetWindow = replay else {
            Issue.record("replay of a past-epoch message: \(String(describing: replay))")
            return
        }
        var restored = try MLSGroup(serialized: receiver.serialized())
        guard case .application = try restored.process(later) else {
            Issue.record("restored group lost the past epoch")
            return
        }
    }

    @Test("with no retention a late message is refused as from a wrong epoch")
    func noRetention() throws {
        var configuration = MLSGroupConfiguration()
        configuration.pastEpochRetention = 0
        var harness = try GroupHarness(suite: .x25519Aes128Sha256Ed25519, configuration: configuration)
        try harness.add(1, by: "m0")
        var sender = try #require(harness.members["m1"])
        let late = try sender.encrypt([1])
        harness.members["m1"] = sender
        try harness.commit(by: "m0")
        var receiver = try #require(harness.members["m0"])
        let error = #expect(throws: MLSError.self) {
            try receiver.process(late)
        }
        guard case .wrongEpoch = error else {
            Issue.record("expected wrongEpoch, got \(String(describing: error))")
            return
        }
    }
}

/// Proposals from an external sender and from a joining client.
@Suite("MLS group: external proposals")
struct ExternalProposalTests {
    @Test("an external sender's Remove and a new member's own Add are committed by reference")
    func externalSenders() throws {
        var harness = try GroupHarness(suite: .x25519Aes128Sha256Ed25519)
        try harness.add(2, by: "m0")
        let service = try harness.provider.generateSignatureKey()
        let senders = ExternalSenderList(senders: [
            ExternalSender(signatureKey: service.publicKey, credential: .basic(identity: Array("ds".utf8)))
        ])
        var options = CommitOptions()
        options.groupContextExtensions = [Extension(type: .externalSenders, data: senders.mlsEncoded)]
        try harness.commit(by: "m0", options)
        harness.expectAgreement()
        let reference = try #require(harness.members["m0"])
        let removal = try MLSGroup.externalProposal(
            .remove(try #require(harness.members["m2"]).ownLeaf),
            groupID: reference.groupID,
            epoch: reference.epoch,
            senderIndex: 0,
            signingKey: service,
            suite: harness.suite
        )
        let bundle = try harness.keyPackage("newcomer")
        let selfAdd = try MLSGroup.newMemberProposal(
            keyPackage: bundle,
            groupID: reference.groupID,
            epoch: reference.epoch
        )
        let forged = try MLSGroup.externalProposal(
            .remove(LeafIndex(0)),
            groupID: reference.groupID,
            epoch: reference.epoch,
            senderIndex: 0,
            signingKey: try harness.provider.generateSignatureKey(),
            suite: harness.suite
        )
        for name in harness.names {
            var member = try #require(harness.members[name])
            guard case .proposal(let summary) = try member.process(removal) else {
                Issue.record("external proposal not accepted")
                return
            }
            #expect(summary.sender == .external(0))
            guard case .proposal = try member.process(selfAdd) else {
                Issue.record("new member proposal not accepted")
                return
            }
            let error = #expect(throws: MLSError.self) {
                try member.process(forged)
            }
            guard case .invalidSignature = error else {
                Issue.record("forged external proposal: \(String(describing: error))")
                return
            }
            harness.members[name] = member
        }
        try harness.commit(by: "m1", CommitOptions(), joining: [("newcomer", bundle)])
        #expect(harness.members["m2"] == nil)
        #expect(harness.members["newcomer"] != nil)
        harness.expectAgreement()
    }
}

/// Pending commits: echo, conflict, serialization.
@Suite("MLS group: pending commits")
struct PendingCommitTests {
    @Test("our own commit echoed by the delivery service merges; a competing commit discards it")
    func echoAndConflict() throws {
        var harness = try GroupHarness(suite: .x25519Aes128Sha256Ed25519)
        try harness.add(2, by: "m0")
        var m0 = try #require(harness.members["m0"])
        let output = try m0.commit()
        #expect(m0.hasPendingCommit)
        var restored = try MLSGroup(serialized: m0.serialized())
        guard case .commit = try m0.process(output.commit) else {
            Issue.record("echo not merged")
            return
        }
        #expect(m0.epoch == 2)
        guard case .commit = try restored.process(output.commit) else {
            Issue.record("echo not merged after restore")
            return
        }
        #expect(restored.epochAuthenticator == m0.epochAuthenticator)
        // m1 and m2 commit concurrently; m2 processes m1's commit and loses its own.
        var m1 = try #require(harness.members["m1"])
        var m2 = try #require(harness.members["m2"])
        _ = try m2.process(output.commit)
        _ = try m1.process(output.commit)
        let losing = try m2.commit()
        let winning = try m1.commit()
        try m1.mergePendingCommit()
        _ = try m2.process(winning.commit)
        #expect(!m2.hasPendingCommit)
        #expect(m2.epochAuthenticator == m1.epochAuthenticator)
        #expect(throws: MLSError.self) {
            try m1.process(losing.commit)
        }
    }
}

/// Leaf indices from peers are bounded by the tree, not wrapped onto other leaves.
@Suite("MLS group: hostile indices")
struct HostileIndexTests {
    @Test(
        "Remove of a leaf index whose node index would wrap to leaf 0 is refused",
        arguments: [0x8000_0000, 0xFFFF_FFFF, 4]
    )
    func wrappingRemove(index: UInt32) throws {
        var harness = try GroupHarness(suite: .x25519Aes128Sha256Ed25519)
        try harness.add(2, by: "m0")
        var member = try #require(harness.members["m1"])
        let before = member.serialized()
        let error = #expect(throws: MLSError.self) {
            try member.propose(.remove(LeafIndex(index)))
        }
        guard case .invalidProposal = error else {
            Issue.record("expected invalidProposal, got \(String(describing: error))")
            return
        }
        #expect(member.serialized() == before)
        #expect(member.tree.leaf(LeafIndex(index)) == nil)
    }
}
