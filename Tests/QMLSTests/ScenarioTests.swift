import QSSHTestSupport
import Testing

@testable import QMLS

/// Larger scenarios: a 50-member group with adds, removes, self-updates and Update proposals
/// by different members, and application messages delivered out of order.
@Suite("MLS scenarios")
struct ScenarioTests {
    @Test(
        "50 members: adds, removes, updates, commits by different members; agreement every epoch",
        .timeLimit(.minutes(10)),
        arguments: [CipherSuite.x25519Aes128Sha256Ed25519, .xwingAes256Sha384MLDSA65]
    )
    func fiftyMembers(suite: CipherSuite) throws {
        var rng = TestRNG(seed: UInt64(suite.rawValue))
        var harness = try GroupHarness(suite: suite)
        var committer = "m0"
        while harness.members.count < 50 {
            let batch = min(10, 50 - harness.members.count)
            let added = try harness.add(batch, by: committer)
            harness.expectAgreement()
            committer = added[Int.random(in: 0..<added.count, using: &rng)]
        }
        #expect(harness.members.count == 50)
        try deliverOutOfOrder(&harness, rng: &rng)
        for round in 0..<12 {
            let names = harness.names
            let actor = names[Int.random(in: 0..<names.count, using: &rng)]
            switch round % 4 {
            case 0:
                // Self-update: an empty commit.
                try harness.commit(by: actor)
            case 1:
                // Remove two members, then bring the group back to 50.
                let others = names.filter { $0 != actor }.shuffled(using: &rng)
                try harness.remove(Array(others.prefix(2)), by: actor)
                harness.expectAgreement()
                let refill = harness.names.filter { $0 != actor }
                try harness.add(2, by: refill[Int.random(in: 0..<refill.count, using: &rng)])
            case 2:
                // An Update proposal by one member, committed (without a path) by another.
                var proposer = try #require(harness.members[actor])
                let proposal = try proposer.proposeUpdate()
                harness.members[actor] = proposer
                for name in names where name != actor {
                    var member = try #require(harness.members[name])
                    _ = try member.process(proposal)
                    harness.members[name] = member
                }
                let others = names.filter { $0 != actor }
                try harness.commit(by: others[Int.random(in: 0..<others.count, using: &rng)])
            default:
                // Add and remove in the same commit.
                let others = names.filter { $0 != actor }.shuffled(using: &rng)
                let name = "m\(harness.nextName)"
                harness.nextName += 1
                let bundle = try harness.keyPackage(name)
                var options = CommitOptions()
                options.adds = [bundle.keyPackage]
                options.removes = [try #require(harness.members[others[0]]).ownLeaf]
                try harness.commit(by: actor, options, joining: [(name, bundle)])
            }
            harness.expectAgreement()
            #expect(harness.members.count == 50)
        }
        try deliverOutOfOrder(&harness, rng: &rng)
    }

    /// One member sends 30 messages; each other member receives them in its own random order
    /// (every gap inside the out-of-order window), and a replay is refused.
    func deliverOutOfOrder(_ harness: inout GroupHarness, rng: inout TestRNG) throws {
        let names = harness.names
        let senderName = names[Int.random(in: 0..<names.count, using: &rng)]
        var sender = try #require(harness.members[senderName])
        var messages: [[UInt8]] = []
        for i in 0..<30 {
            messages.append(try sender.encrypt(Array("message \(i)".utf8)))
        }
        harness.members[senderName] = sender
        for name in names where name != senderName {
            var receiver = try #require(harness.members[name])
            let order = Array(0..<messages.count).shuffled(using: &rng)
            for i in order {
                let result = try receiver.process(messages[i])
                #expect(
                    result
                        == .application(
                            ApplicationMessage(
                                sender: sender.ownLeaf,
                                data: Array("message \(i)".utf8),
                                authenticatedData: [],
                                epoch: sender.epoch
                            )
                        )
                )
            }
            let before = receiver.serialized()
            let replay = #expect(throws: MLSError.self) {
                try receiver.process(messages[order[0]])
            }
            guard case .ratchetWindow = replay else {
                Issue.record("replay refused with \(String(describing: replay))")
                return
            }
            #expect(receiver.serialized() == before)
            harness.members[name] = receiver
        }
    }

    @Test("ratchet limits: too far ahead and outside the window are refused")
    func ratchetLimits() throws {
        var configuration = MLSGroupConfiguration()
        configuration.ratchetLimits = RatchetLimits(outOfOrderWindow: 4, maximumForwardDistance: 10)
        var harness = try GroupHarness(suite: .x25519Aes128Sha256Ed25519, configuration: configuration)
        try harness.add(1, by: "m0")
        var sender = try #require(harness.members["m0"])
        var messages: [[UInt8]] = []
        for i in 0..<20 {
            messages.append(try sender.encrypt([UInt8(i)]))
        }
        var receiver = try #require(harness.members["m1"])
        let ahead = #expect(throws: MLSError.self) {
            try receiver.process(messages[15])
        }
        guard case .ratchetWindow = ahead else {
            Issue.record("expected a ratchet window error, got \(String(describing: ahead))")
            return
        }
        _ = try receiver.process(messages[10])
        // Generations 0...5 fell out of the 4-key window; 6...9 are still there.
        let stale = #expect(throws: MLSError.self) {
            try receiver.process(messages[2])
        }
        guard case .ratchetWindow = stale else {
            Issue.record("expected a ratchet window error, got \(String(describing: stale))")
            return
        }
        #expect(
            try receiver.process(messages[7])
                == .application(ApplicationMessage(sender: LeafIndex(0), data: [7], authenticatedData: [], epoch: 1))
        )
    }
}
