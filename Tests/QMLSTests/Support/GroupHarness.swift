import QSSHTestSupport
import QMLS
import Testing

/// A set of in-memory members of one group, with helpers that deliver each commit to every
/// member and check that all of them agree on the epoch.
struct GroupHarness {
    let suite: CipherSuite
    let provider: CipherSuiteProvider
    var configuration: MLSGroupConfiguration
    /// Members by a stable name (the leaf index changes as members come and go).
    var members: [String: MLSGroup] = [:]
    var nextName = 0

    init(
        suite: CipherSuite,
        creator: String = "m0",
        configuration: MLSGroupConfiguration = MLSGroupConfiguration()
    ) throws {
        self.suite = suite
        self.provider = try CipherSuiteProvider(suite)
        self.configuration = configuration
        let key = try provider.generateSignatureKey()
        members[creator] = try MLSGroup.create(
            suite: suite,
            credential: .basic(identity: Array(creator.utf8)),
            signingKey: key,
            configuration: configuration
        )
        nextName = 1
    }

    func keyPackage(_ name: String) throws -> KeyPackageBundle {
        try KeyPackageBundle.create(
            suite: suite,
            credential: .basic(identity: Array(name.utf8)),
            signingKey: try provider.generateSignatureKey()
        )
    }

    /// The name of the member at a leaf.
    func name(at leaf: LeafIndex) -> String? {
        members.first { $0.value.ownLeaf == leaf }?.key
    }

    var names: [String] {
        members.keys.sorted()
    }

    /// `committer` commits with `options`; everyone else processes it; joiners use the Welcome.
    @discardableResult
    mutating func commit(
        by committer: String,
        _ options: CommitOptions = CommitOptions(),
        joining: [(String, KeyPackageBundle)] = []
    ) throws -> CommitOutput {
        guard var group = members[committer] else {
            throw HarnessError.unknownMember(committer)
        }
        let output = try group.commit(options)
        for name in names where name != committer {
            guard var other = members[name] else {
                continue
            }
            let processed: ProcessedMessage
            do {
                processed = try other.process(output.commit)
            } catch {
                throw HarnessError.unexpected(
                    "\(name) at \(other.ownLeaf) failed on the commit of \(committer): \(error)"
                )
            }
            switch processed {
            case .commit:
                members[name] = other
            case .removed:
                members[name] = nil
            default:
                throw HarnessError.unexpected("\(name) did not see a commit")
            }
        }
        try group.mergePendingCommit()
        members[committer] = group
        if let welcome = output.welcome {
            for (name, bundle) in joining {
                members[name] = try MLSGroup.join(
                    welcome: welcome,
                    keyPackage: bundle,
                    ratchetTree: configuration.ratchetTreeInWelcome ? nil : group.tree.wireNodes,
                    configuration: configuration
                )
            }
        }
        return output
    }

    /// Adds `count` new members in one commit by `committer`; returns their names.
    @discardableResult
    mutating func add(_ count: Int, by committer: String) throws -> [String] {
        var joining: [(String, KeyPackageBundle)] = []
        for _ in 0..<count {
            let name = "m\(nextName)"
            nextName += 1
            joining.append((name, try keyPackage(name)))
        }
        var options = CommitOptions()
        options.adds = joining.map(\.1.keyPackage)
        try commit(by: committer, options, joining: joining)
        return joining.map(\.0)
    }

    /// Removes members by name in one commit.
    mutating func remove(_ removed: [String], by committer: String) throws {
        var options = CommitOptions()
        options.removes = try removed.map { name in
            guard let leaf = members[name]?.ownLeaf else {
                throw HarnessError.unknownMember(name)
            }
            return leaf
        }
        try commit(by: committer, options)
        for name in removed {
            #expect(members[name] == nil, "\(name) should have left the group")
        }
    }

    /// Checks that every member is in the same epoch with the same authenticator, exporter and
    /// tree hash, and that the tree lists exactly the current members.
    func expectAgreement(sourceLocation: SourceLocation = #_sourceLocation) {
        guard let reference = members.values.first else {
            return
        }
        let exporter = reference.exportSecret(label: "test", context: [1, 2], length: 32)
        for (name, group) in members {
            #expect(group.epoch == reference.epoch, "\(name) epoch", sourceLocation: sourceLocation)
            #expect(
                group.epochAuthenticator == reference.epochAuthenticator,
                "\(name) authenticator",
                sourceLocation: sourceLocation
            )
            #expect(
                group.exportSecret(label: "test", context: [1, 2], length: 32) == exporter,
                "\(name) exporter",
                sourceLocation: sourceLocation
            )
            #expect(
                group.context.treeHash == reference.context.treeHash,
                "\(name) tree hash",
                sourceLocation: sourceLocation
            )
            #expect(group.members.count == members.count, "\(name) member count", sourceLocation: sourceLocation)
        }
    }

    enum HarnessError: Error {
        case unknownMember(String)
        case unexpected(String)
    }
}

/// The shared seeded generator under the name these tests use.
typealias TestRNG = SplitMix64
