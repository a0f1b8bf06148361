import QNSPCrypto
import QSSHAgent
import QSSHTestSupport
import Testing

/// Randomized inputs for every agent parser: no input may crash, and what decodes re-encodes
/// to the same message (so a parsed message means exactly what was sent).
@Suite("Agent parser fuzzing")
struct AgentFuzzTests {
    static var seeds: [[UInt8]] {
        AgentProtocolTests.requests.map { $0.encoded() } + [
            AgentResponse.identities([
                AgentIdentity(keyBlob: AgentKeyFormat.keyBlob(AgentKeys.alice.publicKey), comment: "c")
            ]).encoded(),
            AgentResponse.signature(blob: AgentKeyFormat.signatureBlob([UInt8](repeating: 1, count: 3309))).encoded(),
            [5], [6],
        ]
    }

    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        switch Int.random(in: 0..<6, using: &rng) {
        case 0 where !b.isEmpty:
            b[Int.random(in: 0..<b.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
        case 1 where !b.isEmpty:
            b.removeLast(Int.random(in: 1...b.count, using: &rng))
        case 2:
            b += (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        case 3 where b.count > 5:
            // Lengths are where parsers go wrong: overwrite four bytes with a large or small number.
            let at = Int.random(in: 1..<(b.count - 4), using: &rng)
            let choices: [UInt32] = [.max, 0x7fff_ffff, 0, 1, UInt32(b.count)]
            let v = choices.randomElement(using: &rng) ?? 0
            for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (24 - 8 * UInt32(i))) }
        case 4:
            b = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        default:
            if !b.isEmpty { b[0] = UInt8.random(in: 0...40, using: &rng) }
        }
        return b
    }

    @Test(
        "requests: random mutations never crash; decoded ones re-encode identically",
        arguments: [UInt64(1), 2, 3, 4]
    )
    func requests(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var decoded = 0
        var state = AgentState()
        for i in 0..<4000 {
            let input = Self.mutate(Self.seeds[i % Self.seeds.count], &rng)
            guard let request = try? AgentRequest(frame: input) else { continue }
            decoded += 1
            // Constraints may come in any order, so compare meanings, not bytes.
            #expect((try? AgentRequest(frame: request.encoded())) == request)
            // The state machine takes whatever decodes without crashing.
            if case .confirm(let c) = state.handle(request, now: UInt64(i)) {
                _ = state.signConfirmed(c, now: UInt64(i))
            }
        }
        #expect(decoded > 100)
    }

    @Test("responses and ClientAuth inputs: random mutations never crash", arguments: [UInt64(5), 6])
    func responses(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let input = AgentKeys.input(for: AgentKeys.alice).agentData
        for i in 0..<4000 {
            let frame = Self.mutate(Self.seeds[i % Self.seeds.count], &rng)
            if let r = try? AgentResponse(frame: frame), r != .failure {
                #expect(r.encoded() == frame)
            }
            let data = Self.mutate(input, &rng)
            if let parsed = try? ClientAuthSigningInput(agentData: data) {
                #expect(parsed.agentData == data)
            }
            _ = try? AgentKeyFormat.publicKey(
                fromBlob: Self.mutate(AgentKeyFormat.keyBlob(AgentKeys.alice.publicKey), &rng)
            )
        }
    }

    @Test("the framer survives random streams", arguments: [UInt64(7), 8])
    func framer(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<500 {
            var framer = AgentFramer()
            let stream = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            framer.feed(stream)
            var total = 0
            while let f = try? framer.nextFrame() {
                total += f.count + 4
                #expect(!f.isEmpty)
            }
            #expect(total <= stream.count)
        }
    }
}
