import Foundation
import QMLS

/// One suite and group size: builds the group and times each operation.
struct GroupBench {
    let suite: CipherSuite
    let size: Int
    let minimumSeconds: Double

    struct Result {
        static let header = [
            "suite", "N", "create", "add N-1 (1 commit)", "empty commit", "process commit", "empty commit, sparse",
            "process sparse commit", "app msgs/s",
        ]
        var suite: CipherSuite
        var size: Int
        var create: Double
        var addAll: Double
        var emptyCommit: Double
        var processCommit: Double
        var sparseCommit: Double
        var processSparse: Double
        var messagesPerSecond: Double

        var row: [String] {
            [
                suite == .x25519Aes128Sha256Ed25519
                    ? "1" : (suite == .xwingAes256Sha384MLDSA65 ? "PQ (0xF001)" : "\(suite.rawValue)"),
                "\(size)",
                Self.ms(create),
                Self.ms(addAll),
                Self.ms(emptyCommit),
                Self.ms(processCommit),
                Self.ms(sparseCommit),
                Self.ms(processSparse),
                String(format: "%.0f", messagesPerSecond),
            ]
        }

        static func ms(_ seconds: Double) -> String {
            String(format: "%.2f ms", seconds * 1000)
        }
    }

    /// Median duration of `body`, repeated until `minimumSeconds` and at least `minimumRuns`.
    func median(minimumRuns: Int = 5, maximumRuns: Int = 200, _ body: () throws -> Void) rethrows -> Double {
        var samples: [Double] = []
        let clock = ContinuousClock()
        let start = clock.now
        while samples.count < minimumRuns
            || (samples.count < maximumRuns && (clock.now - start) < .milliseconds(Int(minimumSeconds * 1000)))
        {
            let begin = clock.now
            try body()
            samples.append(Self.seconds(clock.now - begin))
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    func run() throws -> Result {
        let provider = try CipherSuiteProvider(suite)
        let creatorKey = try provider.generateSignatureKey()
        var configuration = MLSGroupConfiguration()
        configuration.handshakeWireFormat = .publicMessage
        let create = try median {
            _ = try MLSGroup.create(
                suite: suite,
                credential: .basic(identity: Array("creator".utf8)),
                signingKey: creatorKey,
                configuration: configuration
            )
        }
        let creator = try MLSGroup.create(
            suite: suite,
            credential: .basic(identity: Array("creator".utf8)),
            signingKey: creatorKey,
            configuration: configuration
        )
        var keyPackages: [KeyPackage] = []
        var firstMember: KeyPackageBundle?
        for i in 1..<size {
            let bundle = try KeyPackageBundle.create(
                suite: suite,
                credential: .basic(identity: Array("member \(i)".utf8)),
                signingKey: try provider.generateSignatureKey()
            )
            keyPackages.append(bundle.keyPackage)
            firstMember = firstMember ?? bundle
        }
        var options = CommitOptions()
        options.adds = keyPackages
        var grown = creator
        let addAll = try median(minimumRuns: size >= 500 ? 3 : 5, maximumRuns: size >= 500 ? 3 : 50) {
            var copy = creator
            _ = try copy.commit(options)
        }
        let added = try grown.commit(options)
        try grown.mergePendingCommit()
        let sparseCommit = try median(minimumRuns: 3, maximumRuns: 50) {
            var copy = grown
            _ = try copy.commit()
        }
        var processSparse = 0.0
        if let bundle = firstMember, let welcome = added.welcome {
            let member = try MLSGroup.join(welcome: welcome, keyPackage: bundle, configuration: configuration)
            var committer = grown
            let sparse = try committer.commit()
            processSparse = try median(minimumRuns: 3, maximumRuns: 50) {
                var copy = member
                _ = try copy.process(sparse.commit)
            }
        }
        // mls-rs's setup: two clients join by external commit.
        let (sender, joinCommit) = try MLSGroup.joinExternally(
            groupInfo: try grown.groupInfoMessage(),
            credential: .basic(identity: Array("sender".utf8)),
            signingKey: try provider.generateSignatureKey(),
            configuration: configuration
        )
        _ = try grown.process(joinCommit)
        var senderState = sender
        let (receiver, receiverJoin) = try MLSGroup.joinExternally(
            groupInfo: try senderState.groupInfoMessage(),
            credential: .basic(identity: Array("receiver".utf8)),
            signingKey: try provider.generateSignatureKey(),
            configuration: configuration
        )
        _ = try senderState.process(receiverJoin)
        let emptyCommit = try median {
            var copy = senderState
            _ = try copy.commit()
        }
        var committing = senderState
        let output = try committing.commit()
        let processCommit = try median {
            var copy = receiver
            _ = try copy.process(output.commit)
        }
        var appSender = senderState
        var appReceiver = receiver
        let payload = [UInt8](repeating: 0x61, count: 100)
        let clock = ContinuousClock()
        let start = clock.now
        var pairs = 0
        while clock.now - start < .milliseconds(Int(max(minimumSeconds, 0.2) * 1000)) {
            let ciphertext = try appSender.encrypt(payload)
            _ = try appReceiver.process(ciphertext)
            pairs += 1
        }
        let messagesPerSecond = Double(pairs) / Self.seconds(clock.now - start)
        return Result(
            suite: suite,
            size: size,
            create: create,
            addAll: addAll,
            emptyCommit: emptyCommit,
            processCommit: processCommit,
            sparseCommit: sparseCommit,
            processSparse: processSparse,
            messagesPerSecond: messagesPerSecond
        )
    }
}
