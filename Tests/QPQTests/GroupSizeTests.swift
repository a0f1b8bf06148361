import Foundation
import QMLS
import QNSPCrypto
import QPQClient
import QPQProtocol
import QPQServer
import Testing

/// Large groups: the Welcome carries the ratchet tree (about 6.6 KB per member with X-Wing and
/// ML-DSA-65), so groups past ~38 members needed more than the old 256 KiB welcome limit
/// (docs/messaging.md §7.1).
@Suite("large groups: 200 members through the server core and the codec", .serialized)
struct GroupSizeTests {
    static let suite = CipherSuite.xwingAes256Sha384MLDSA65

    static func token(_ group: MLSGroup) -> [UInt8] {
        group.exportSecret(label: QPQGroupToken.exporterLabel, context: [], length: QPQGroupToken.length)
    }

    /// Every frame goes through the splitter the receiving side uses, whole.
    static func split(_ frame: QPQFrame, _ policy: QPQFrameSplitter.LargeFrames) throws -> [UInt8]? {
        var splitter = QPQFrameSplitter(largeFrames: policy)
        splitter.append(try QPQCodec.encode(frame))
        return try splitter.next()
    }

    @Test("a group of 200 members is built with batched adds; a 201st joins from a 1.3 MB Welcome", .timeLimit(.minutes(3)))
    func twoHundredMembers() async throws {
        let started = Date()
        let dir = TempDir()
        defer { dir.cleanup() }
        let context = try makeServerContext(dir: dir)
        let members = 200
        var devices: [TestDevice] = []
        for i in 0...members { devices.append(try await registerAndLogin("m\(i)", context: context)) }
        let provider = try CipherSuiteProvider(Self.suite)
        func key() throws -> SignaturePrivateKey { try provider.signaturePrivateKey(provider.randomBytes(32)) }
        var bundles: [KeyPackageBundle] = []
        for i in 1...members {
            bundles.append(try KeyPackageBundle.create(suite: Self.suite, credential: .basic(identity: Array("m\(i)".utf8)), signingKey: try key()))
        }
        let setupTime = Date().timeIntervalSince(started)

        let creator = devices[0].transport
        var group = try MLSGroup.create(suite: Self.suite, groupID: Array("big".utf8), credential: .basic(identity: Array("m0".utf8)),
                                        signingKey: try key())
        _ = try await creator.expect(.createGroup(groupId: group.groupID, tokenHash: KeyDerivation.sha256(Self.token(group))))
        /// Commits `adds` (indices into `devices`) and returns the Welcome and the commit request.
        func add(_ adds: [Int]) async throws -> ([UInt8], QPQRequest) {
            var options = CommitOptions()
            options.adds = adds.map { bundles[$0 - 1].keyPackage }
            let output = try group.commit(options)
            var next = group
            try next.mergePendingCommit()
            let welcome = try #require(output.welcome)
            let ids = adds.map { devices[$0].credentials.deviceId }
            let request = QPQRequest.commit(groupId: group.groupID, epoch: group.epoch, token: Self.token(group),
                                            nextTokenHash: KeyDerivation.sha256(Self.token(next)), add: ids, remove: [],
                                            commit: output.commit, welcomes: ids.map { QPQWelcome(deviceId: $0, welcome: welcome) })
            let answer = try await creator.call(request)
            guard case .committed = answer else { throw QPQClientError.unexpectedResponse("\(answer)") }
            group = next
            return (welcome, request)
        }
        var size = 1
        var largestCommitFrame = 0
        var largest: QPQRequest?
        while size < members {
            let batch = Array(size..<min(size + 10, members))
            let (_, request) = try await add(batch)
            let bytes = try QPQCodec.encode(QPQFrame(requestId: 1, message: .request(request))).count
            if bytes > largestCommitFrame { (largestCommitFrame, largest) = (bytes, request) }
            size += batch.count
        }
        // Ten welcomes (one per added device) at ~190 members: far over 2 MiB, under the large-frame limit.
        #expect(largestCommitFrame > QPQLimits.maxFrame && largestCommitFrame <= QPQLimits.maxLargeFrame, "\(largestCommitFrame)")
        // On the wire: the server's splitter takes that Commit after login, and refuses it before.
        let bigFrame = QPQFrame(requestId: 7, message: .request(try #require(largest)))
        #expect((try? Self.split(bigFrame, .commitRequests)) != nil)
        #expect(throws: QPQDecodeError.self) { _ = try Self.split(bigFrame, .refused) }
        #expect(group.members.count == members)

        // The 201st member: its Welcome holds the tree of 200 leaves.
        let (welcome, _) = try await add([members])
        #expect(group.members.count == members + 1)
        #expect(welcome.count > 256 * 1024, "the old limit would have refused it: \(welcome.count) bytes")
        #expect(welcome.count <= QPQLimits.maxWelcome)

        // The joiner fetches its queue (through the codec, as a >2 MiB-capable response) and joins.
        let joiner = devices[members].transport
        let fetched = try await joiner.expect(.fetch(limit: 500))
        guard case .messages(let envelopes, _) = fetched else { throw QPQClientError.unexpectedResponse("\(fetched)") }
        let envelope = try #require(envelopes.first { $0.kind == .welcome })
        #expect(envelope.payload == welcome)
        #expect((try? Self.split(QPQFrame(requestId: 9, message: .response(fetched)), .accepted)) != nil)
        let joined = try MLSGroup.join(welcome: envelope.payload, keyPackage: bundles[members - 1])
        #expect(joined.members.count == members + 1)
        #expect(joined.epoch == group.epoch)
        #expect(Self.token(joined) == Self.token(group), "same epoch secrets")

        // The joiner can speak in the group: a message the creator decrypts.
        var speaker = joined
        let message = try speaker.encrypt(Array("hello, 200 of you".utf8))
        var reader = group
        let processed = try reader.process(message)
        guard case .application(let app) = processed else { throw QPQClientError.unexpectedResponse("\(processed)") }
        #expect(app.data == Array("hello, 200 of you".utf8))
        #expect(app.sender == joined.ownLeaf)
        print("group size: welcome at \(members) members \(welcome.count) B, largest Commit frame \(largestCommitFrame) B, "
              + "setup \(Int(setupTime)) s, total \(Int(Date().timeIntervalSince(started))) s")
    }

    @Test("splitter: frames over 2 MiB only as the policy allows (Commit type byte checked first); 20,000 random headers")
    func largeFramePolicy() throws {
        var rng = QPQRandom(seed: 140)
        for _ in 0..<20_000 {
            let policy: QPQFrameSplitter.LargeFrames = [.refused, .commitRequests, .accepted][Int(rng.next() % 3)]
            let length = Int(rng.next() % UInt64(QPQLimits.maxLargeFrame + 4096)) + 1
            let type: UInt8 = rng.next() % 4 == 0 ? QPQFrameSplitter.commitType : UInt8(truncatingIfNeeded: rng.next())
            var splitter = QPQFrameSplitter(largeFrames: policy)
            splitter.append([UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8),
                             UInt8(truncatingIfNeeded: length), 1, type])
            let allowed: Bool
            switch policy {
            case .refused: allowed = length <= QPQLimits.maxFrame
            case .commitRequests: allowed = length <= QPQLimits.maxFrame || (length <= QPQLimits.maxLargeFrame && type == QPQFrameSplitter.commitType)
            case .accepted: allowed = length <= QPQLimits.maxLargeFrame
            }
            do {
                let body = try splitter.next()
                #expect(allowed, "length \(length) type \(type) \(policy) should be refused")
                #expect(body == nil || length <= 2)
            } catch {
                #expect(!allowed, "length \(length) type \(type) \(policy): \(error)")
            }
        }
        // The type byte really is Commit's, and the codec's own limits agree.
        let commit = QPQRequest.commit(groupId: [1], epoch: 0, token: zeroToken, nextTokenHash: zeroToken, add: [], remove: [], commit: [1], welcomes: [])
        #expect(commit.type == QPQFrameSplitter.commitType)
        #expect(QPQCodec.frameLimit(.request(commit)) == QPQLimits.maxLargeFrame)
        #expect(QPQCodec.frameLimit(.request(.ping)) == QPQLimits.maxFrame)
        // A non-Commit request body over 2 MiB is refused by the decoder itself.
        var big = try QPQCodec.encodeBody(QPQFrame(requestId: 1, message: .request(.uploadKeyPackages(lastResort: false, packages: [[1]]))))
        big += [UInt8](repeating: 0, count: QPQLimits.maxFrame)
        #expect(throws: QPQDecodeError.tooLarge(length: big.count)) { try QPQCodec.decodeBody(big) }
    }
}
