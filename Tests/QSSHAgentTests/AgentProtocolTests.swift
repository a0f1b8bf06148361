import QNSP
import QNSPCrypto
import QSSHAgent
import QSSHTestSupport
import Testing

@Suite("Agent protocol codec")
struct AgentProtocolTests {
    static let requests: [AgentRequest] = [
        .requestIdentities,
        AgentKeys.signRequest(AgentKeys.alice),
        .add(AgentKeyMaterial(AgentKeys.alice), constraints: AgentConstraints()),
        .add(AgentKeyMaterial(AgentKeys.bob), constraints: AgentConstraints(lifetime: 600, confirm: true)),
        .add(AgentKeyMaterial(AgentKeys.bob), constraints: AgentConstraints(lifetime: 1)),
        .add(AgentKeyMaterial(AgentKeys.bob), constraints: AgentConstraints(confirm: true)),
        .remove(keyBlob: AgentKeyFormat.keyBlob(AgentKeys.bob.publicKey)),
        .removeAll,
        .lock(passphrase: Array("hunter2".utf8)),
        .unlock(passphrase: []),
    ]

    @Test("every request encodes and decodes to itself", arguments: requests)
    func requestRoundTrip(_ request: AgentRequest) throws {
        #expect(try AgentRequest(frame: request.encoded()) == request)
    }

    @Test("message numbers are OpenSSH's")
    func numbers() {
        #expect(AgentRequest.requestIdentities.encoded() == [11])
        #expect(AgentRequest.removeAll.encoded() == [19])
        #expect(AgentRequest.lock(passphrase: []).encoded() == [22, 0, 0, 0, 0])
        #expect(
            AgentRequest.add(AgentKeyMaterial(AgentKeys.alice), constraints: AgentConstraints()).encoded().first == 17
        )
        #expect(
            AgentRequest.add(AgentKeyMaterial(AgentKeys.alice), constraints: AgentConstraints(confirm: true)).encoded()
                .first == 25
        )
        #expect(AgentResponse.failure.encoded() == [5])
        #expect(AgentResponse.success.encoded() == [6])
        #expect(AgentResponse.identities([]).encoded() == [12, 0, 0, 0, 0])
    }

    @Test("responses encode and decode to themselves")
    func responseRoundTrip() throws {
        let list = AgentResponse.identities([
            AgentIdentity(keyBlob: AgentKeyFormat.keyBlob(AgentKeys.alice.publicKey), comment: "a"),
            AgentIdentity(keyBlob: [1, 2, 3], comment: ""),
        ])
        for r in [
            AgentResponse.failure, .success, list,
            .signature(blob: AgentKeyFormat.signatureBlob([UInt8](repeating: 9, count: 3309))),
        ] {
            #expect(try AgentResponse(frame: r.encoded()) == r)
        }
        // OpenSSH's extension failure counts as a failure.
        #expect(try AgentResponse(frame: [28]) == .failure)
    }

    @Test("unknown message types decode as unsupported; trailing bytes and short strings are errors")
    func malformed() throws {
        #expect(try AgentRequest(frame: [27, 0, 0, 0, 1, 65]) == .unsupported(AgentMessageType(rawValue: 27)))
        #expect(throws: AgentError.self) { try AgentRequest(frame: [11, 0]) }
        #expect(throws: AgentError.self) { try AgentRequest(frame: [18, 0, 0, 0, 9, 1]) }
        #expect(throws: AgentError.self) { try AgentRequest(frame: [22, 0xff, 0xff, 0xff, 0xff]) }
        #expect(throws: AgentError.self) { try AgentRequest(frame: []) }
        // An unknown constraint is refused rather than ignored.
        var add = AgentRequest.add(AgentKeyMaterial(AgentKeys.alice), constraints: AgentConstraints(confirm: true))
            .encoded()
        add[add.count - 1] = 3
        #expect(throws: AgentError.self) { try AgentRequest(frame: add) }
        // A key type we do not hold.
        var w = AgentWireWriter()
        w.write(byte: 17)
        w.write(text: "ssh-rsa")
        let e = #expect(throws: AgentError.self) { try AgentRequest(frame: w.bytes) }
        guard case .unsupportedKeyType("ssh-rsa") = e else {
            Issue.record("got \(String(describing: e))")
            return
        }
    }

    @Test("the framer reassembles frames split anywhere and refuses oversized ones")
    func framer() throws {
        let messages = Self.requests.map { $0.encoded() }
        let stream = messages.flatMap { AgentFramer.frame($0) }
        var rng = SplitMix64(seed: 16)
        for _ in 0..<20 {
            var framer = AgentFramer()
            var out: [[UInt8]] = []
            var i = 0
            while i < stream.count {
                let n = Int.random(in: 1...700, using: &rng)
                framer.feed(stream[i..<min(stream.count, i + n)])
                i += n
                while let f = try framer.nextFrame() { out.append(f) }
            }
            #expect(out == messages)
        }
        var big = AgentFramer()
        big.feed([0, 4, 0, 1])
        #expect(throws: AgentError.frameTooLarge(256 * 1024 + 1)) { try big.nextFrame() }
        var empty = AgentFramer()
        empty.feed([0, 0, 0, 0])
        #expect(throws: AgentError.self) { try empty.nextFrame() }
    }

    @Test("a ClientAuth signing input round-trips; other data is refused")
    func signingInput() throws {
        let input = AgentKeys.input(for: AgentKeys.alice)
        #expect(try ClientAuthSigningInput(agentData: input.agentData) == input)
        #expect(
            input.agentData
                == ClientAuthSigningInput.agentData(message: input.message, context: KeySchedule.clientAuthContext)
        )
        let otherContext = ClientAuthSigningInput.agentData(
            message: input.message,
            context: Array("qnsp1 host key".utf8)
        )
        #expect(throws: AgentError.self) { try ClientAuthSigningInput(agentData: otherContext) }
        #expect(throws: AgentError.self) { try ClientAuthSigningInput(agentData: input.agentData + [0]) }
        #expect(throws: AgentError.self) { try ClientAuthSigningInput(agentData: Array(input.agentData.dropLast())) }
        let control = ClientAuthSigningInput(
            transcriptHash: input.transcriptHash,
            username: "al\u{1b}ice",
            publicKey: input.publicKey
        )
        #expect(throws: AgentError.self) { try ClientAuthSigningInput(agentData: control.agentData) }
    }

    @Test("peer policy: own uid and root only")
    func peerPolicy() {
        #expect(AgentPeerPolicy.allows(peerUID: 1000, ownUID: 1000))
        #expect(AgentPeerPolicy.allows(peerUID: 0, ownUID: 1000))
        #expect(!AgentPeerPolicy.allows(peerUID: 1001, ownUID: 1000))
        #expect(!AgentPeerPolicy.allows(peerUID: nil, ownUID: 1000))
        #expect(!AgentPeerPolicy.allows(peerUID: 1000, ownUID: 0))
    }
}

extension AgentRequest: CustomTestStringConvertible {
    public var testDescription: String {
        switch self {
        case .requestIdentities: return "request identities"
        case .sign: return "sign"
        case .add(_, let c): return "add (lifetime \(c.lifetime.map(String.init) ?? "none"), confirm \(c.confirm))"
        case .remove: return "remove"
        case .removeAll: return "remove all"
        case .lock: return "lock"
        case .unlock: return "unlock"
        case .unsupported(let t): return "unsupported \(t)"
        }
    }
}
