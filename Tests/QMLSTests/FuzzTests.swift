import QSSHTestSupport
import Testing

@testable import QMLS

/// Hostile input: every decoder gets random and mutated bytes; every single-bit flip of real
/// messages is refused with an MLSError and leaves the group state untouched.
@Suite("MLS fuzz and tamper")
struct FuzzTests {
    /// Valid messages of a three-member group, plus the states that receive them.
    struct Corpus {
        var receiver: MLSGroup
        var joinerBundle: KeyPackageBundle
        var application: [UInt8]
        var proposal: [UInt8]
        var privateCommit: [UInt8]
        var publicCommit: [UInt8]
        var publicReceiver: MLSGroup
        var welcome: [UInt8]
        var samples: [[UInt8]]
    }

    static func makeCorpus() throws -> Corpus {
        var harness = try GroupHarness(suite: .x25519Aes128Sha256Ed25519)
        try harness.add(2, by: "m0")
        var sender = try #require(harness.members["m1"])
        let application = try sender.encrypt(Array("fuzz me".utf8), authenticatedData: [1, 2, 3])
        let receiver = try #require(harness.members["m2"])
        var committer = try #require(harness.members["m0"])
        let bundle = try harness.keyPackage("joiner")
        var options = CommitOptions()
        options.adds = [bundle.keyPackage]
        let privateOutput = try committer.commit(options)
        var publicConfiguration = MLSGroupConfiguration()
        publicConfiguration.handshakeWireFormat = .publicMessage
        var publicCommitter = try #require(harness.members["m0"])
        publicCommitter.configuration = publicConfiguration
        let publicOutput = try publicCommitter.commit()
        var proposer = try #require(harness.members["m1"])
        let proposal = try proposer.propose(.remove(LeafIndex(0)))
        let welcome = try #require(privateOutput.welcome)
        let keyPackage = MLSMessage(body: .keyPackage(bundle.keyPackage)).mlsEncoded
        let state = receiver.serialized()
        return Corpus(
            receiver: receiver,
            joinerBundle: bundle,
            application: application,
            proposal: proposal,
            privateCommit: privateOutput.commit,
            publicCommit: publicOutput.commit,
            publicReceiver: receiver,
            welcome: welcome,
            samples: [
                application, proposal, privateOutput.commit, publicOutput.commit, welcome, privateOutput.groupInfo,
                keyPackage, state, receiver.tree.wireNodes.mlsEncoded,
            ]
        )
    }

    /// Mutations of a valid input: bit flips, byte sets, truncation, extension, insertion,
    /// deletion and splicing with another sample.
    static func mutate(_ input: [UInt8], _ other: [UInt8], _ rng: inout TestRNG) -> [UInt8] {
        var bytes = input
        switch Int.random(in: 0..<7, using: &rng) {
        case 0:
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            }
        case 1:
            let values: [UInt8] = [0, 0xff, 0x7f, 0x80, 0x40, 0xc0, 1]
            for _ in 0..<Int.random(in: 1...8, using: &rng) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] =
                    values[Int.random(in: 0..<values.count, using: &rng)]
            }
        case 2:
            bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng)))
        case 3:
            bytes += rng.bytes(Int.random(in: 1...64, using: &rng))
        case 4:
            let at = Int.random(in: 0...bytes.count, using: &rng)
            bytes.insert(contentsOf: rng.bytes(Int.random(in: 1...16, using: &rng)), at: at)
        case 5:
            if bytes.count > 8 {
                let at = Int.random(in: 0..<(bytes.count - 4), using: &rng)
                bytes.removeSubrange(at..<(at + Int.random(in: 1...4, using: &rng)))
            }
        default:
            let cut = Int.random(in: 0...bytes.count, using: &rng)
            let from = Int.random(in: 0...other.count, using: &rng)
            bytes = Array(bytes.prefix(cut)) + Array(other.suffix(from: from))
        }
        return bytes
    }

    /// Runs every decoder on `input`; returns how many accepted it.
    static func decodeAll(_ input: [UInt8]) -> Int {
        var accepted = 0
        func attempt(_ body: () throws -> Void) {
            if (try? body()) != nil {
                accepted += 1
            }
        }
        attempt { _ = try MLSMessage(mlsDecoding: input) }
        attempt { _ = try PublicMessage(mlsDecoding: input) }
        attempt { _ = try PrivateMessage(mlsDecoding: input) }
        attempt { _ = try Welcome(mlsDecoding: input) }
        attempt { _ = try GroupInfo(mlsDecoding: input) }
        attempt { _ = try GroupSecrets(mlsDecoding: input) }
        attempt { _ = try KeyPackage(mlsDecoding: input) }
        attempt { _ = try LeafNode(mlsDecoding: input) }
        attempt { _ = try Commit(mlsDecoding: input) }
        attempt { _ = try Proposal(mlsDecoding: input) }
        attempt { _ = try UpdatePath(mlsDecoding: input) }
        attempt { _ = try AuthenticatedContent(mlsDecoding: input) }
        attempt { _ = try SenderData(mlsDecoding: input) }
        attempt { _ = try GroupContext(mlsDecoding: input) }
        attempt { _ = try RequiredCapabilities(mlsDecoding: input) }
        attempt { _ = try ExternalSenderList(mlsDecoding: input) }
        attempt { _ = try RatchetTree(try RatchetTreeNodes(mlsDecoding: input)) }
        attempt { _ = try MLSGroup(serialized: input) }
        return accepted
    }

    @Test("every decoder: 100,000 random and mutated inputs end in a value or an error", .timeLimit(.minutes(15)))
    func decoders() throws {
        let corpus = try Self.makeCorpus()
        var rng = TestRNG(seed: 0x5eed)
        var accepted = 0
        let count = 100_000
        for i in 0..<count {
            let input: [UInt8]
            if i % 4 == 0 {
                input = rng.bytes(Int.random(in: 0...512, using: &rng))
            } else {
                let sample = corpus.samples[i % corpus.samples.count]
                let other = corpus.samples[Int.random(in: 0..<corpus.samples.count, using: &rng)]
                input = Self.mutate(sample, other, &rng)
            }
            accepted += Self.decodeAll(input)
        }
        print("[fuzz] \(count) inputs x 18 decoders, \(accepted) decodings succeeded, none crashed")
        #expect(accepted < count * 18)
    }

    @Test("100,000 random and mutated messages to a group: all refused, state unchanged", .timeLimit(.minutes(15)))
    func groupProcessing() throws {
        let corpus = try Self.makeCorpus()
        var rng = TestRNG(seed: 0xfeed)
        let originals = [corpus.application, corpus.proposal, corpus.privateCommit, corpus.publicCommit]
        var group = corpus.receiver
        let before = group.serialized()
        var refusals: [String: Int] = [:]
        for i in 0..<100_000 {
            let input: [UInt8]
            if i % 5 == 0 {
                input = rng.bytes(Int.random(in: 0...400, using: &rng))
            } else {
                let sample = originals[i % originals.count]
                input = Self.mutate(sample, originals[Int.random(in: 0..<originals.count, using: &rng)], &rng)
            }
            if originals.contains(input) {
                continue
            }
            do {
                let result = try group.process(input)
                Issue.record("a mutated message was accepted: \(result)")
                group = corpus.receiver
            } catch {
                refusals[Self.caseName(error), default: 0] += 1
            }
        }
        #expect(group.serialized() == before)
        print("[fuzz] group refusals by error: \(refusals.sorted { $0.key < $1.key })")
        // The untouched state still processes the real messages.
        guard case .application = try group.process(corpus.application) else {
            Issue.record("application message not processed after fuzzing")
            return
        }
        guard case .commit = try group.process(corpus.privateCommit) else {
            Issue.record("commit not processed after fuzzing")
            return
        }
    }

    static func caseName(_ error: MLSError) -> String {
        String(describing: error).split(separator: "(").first.map(String.init) ?? "?"
    }

    @Test("every single-bit flip of a PrivateMessage, PublicMessage, commit and Welcome is refused")
    func bitFlips() throws {
        let corpus = try Self.makeCorpus()
        let cases: [(String, [UInt8])] = [
            ("application PrivateMessage", corpus.application),
            ("proposal PrivateMessage", corpus.proposal),
            ("commit PrivateMessage", corpus.privateCommit),
            ("commit PublicMessage", corpus.publicCommit),
        ]
        for (name, message) in cases {
            var group = corpus.receiver
            let before = group.serialized()
            var refusals: [String: Int] = [:]
            for bit in 0..<(message.count * 8) {
                var flipped = message
                flipped[bit / 8] ^= 1 << UInt8(bit % 8)
                do {
                    let result = try group.process(flipped)
                    Issue.record("\(name): flip of bit \(bit) accepted as \(result)")
                    group = corpus.receiver
                } catch {
                    refusals[Self.caseName(error), default: 0] += 1
                }
                if bit % 97 == 0 {
                    #expect(group.serialized() == before, "\(name): state changed after flip \(bit)")
                }
            }
            #expect(group.serialized() == before, "\(name): state changed")
            print("[tamper] \(name): \(message.count * 8) flips refused: \(refusals.sorted { $0.key < $1.key })")
            // The next valid message still processes.
            _ = try group.process(message)
        }
        // Welcome: every flip is refused; the real Welcome still joins afterwards.
        var refusals: [String: Int] = [:]
        for bit in stride(from: 0, to: corpus.welcome.count * 8, by: 1) {
            var flipped = corpus.welcome
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            do {
                _ = try MLSGroup.join(welcome: flipped, keyPackage: corpus.joinerBundle)
                Issue.record("Welcome flip of bit \(bit) accepted")
            } catch {
                refusals[Self.caseName(error), default: 0] += 1
            }
        }
        print("[tamper] Welcome: \(corpus.welcome.count * 8) flips refused: \(refusals.sorted { $0.key < $1.key })")
        _ = try MLSGroup.join(welcome: corpus.welcome, keyPackage: corpus.joinerBundle)
    }
}
