import QSSHTestSupport
@testable import QNSP
import QNSPCrypto
import Testing

/// Randomized inputs for every parser a peer can reach. Each case must end in a
/// `QNSPError` or a clean result; a crash fails the whole test process.
@Suite("Fuzz")
struct FuzzTests {
    /// Mutations of a valid input: bit flips, byte sets, truncation, extension, splices.
    static func mutate(_ input: [UInt8], _ rng: inout TestRNG) -> [UInt8] {
        var b = input
        switch Int.random(in: 0..<6, using: &rng) {
        case 0:
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !b.isEmpty { b[Int.random(in: 0..<b.count, using: &rng)] ^= 1 << UInt8.random(in: 0..<8, using: &rng) }
        case 1:
            for _ in 0..<Int.random(in: 1...8, using: &rng) where !b.isEmpty { b[Int.random(in: 0..<b.count, using: &rng)] = [0, 0xff, 0x7f, 0x80, 1][Int.random(in: 0..<5, using: &rng)] }
        case 2: b = Array(b.prefix(Int.random(in: 0...b.count, using: &rng)))
        case 3: b += rng.bytes(Int.random(in: 1...64, using: &rng))
        case 4:
            if b.count > 2 {
                let i = Int.random(in: 0..<(b.count - 1), using: &rng)
                b.insert(contentsOf: rng.bytes(Int.random(in: 1...16, using: &rng)), at: i)
            }
        default:
            if b.count > 8 { let i = Int.random(in: 0..<(b.count - 4), using: &rng); b.removeSubrange(i..<(i + 4)) }
        }
        return b
    }

    @Test("handshake message decoders: 6,000 random and mutated bodies")
    func decoders() {
        var rng = TestRNG(seed: 1)
        let p = Pair().run()
        let ch = try! ClearRecord.parse(p.clientToServer[0][...], expectedCellSize: nil, maxBodySize: 1 << 20)!.record.body
        let sh = try! ClearRecord.parse(p.serverToClient[0][...], expectedCellSize: nil, maxBodySize: 1 << 20)!.record.body
        let samples: [[UInt8]] = [
            ch, sh,
            HandshakeMessages.ClientAuth(username: "alice", publicKey: Keys.user.publicKey.blob, signature: [UInt8](repeating: 1, count: 3309)).encoded(),
            HandshakeMessages.AuthResult(accepted: false, message: "no").encoded(),
            HandshakeMessages.Reject(code: .other, message: "x").encoded(),
            HandshakeMessages.HostKeyAnnouncement(hostKeyBlob: Keys.host.publicKey.blob, signature: [1, 2]).encoded(),
            HandshakeMessages.HostKeyRequest(nonce: [UInt8](repeating: 0, count: 32), versions: [1]).encoded(),
            HandshakeMessages.ClientPayload(service: "raw").encoded(),
            HandshakeMessages.ServerPayload(version: 1, cipher: 1).encoded(),
        ]
        var failures = 0
        for i in 0..<6000 {
            let input = i % 3 == 0 ? rng.bytes(Int.random(in: 0...300, using: &rng)) : Self.mutate(samples[i % samples.count], &rng)
            let results: [Bool] = [
                (try? HandshakeMessages.ClientHello(decoding: input)) != nil,
                (try? HandshakeMessages.ServerHello(decoding: input)) != nil,
                (try? HandshakeMessages.ClientAuth(decoding: input)) != nil,
                (try? HandshakeMessages.AuthResult(decoding: input)) != nil,
                (try? HandshakeMessages.Reject(decoding: input)) != nil,
                (try? HandshakeMessages.HostKeyAnnouncement(decoding: input)) != nil,
                (try? HandshakeMessages.HostKeyRequest(decoding: input)) != nil,
                (try? HandshakeMessages.ClientPayload(decoding: input)) != nil,
                (try? HandshakeMessages.ServerPayload(decoding: input)) != nil,
                (try? ClearRecord.parse(input[...], expectedCellSize: nil, maxBodySize: 16384)) != nil,
            ]
            failures += results.filter { !$0 }.count
        }
        #expect(failures > 30000)  // the mutations really do break things
    }

    @Test("a server connection fed 3,000 random and mutated first flights never crashes")
    func serverFirstFlight() {
        var rng = TestRNG(seed: 2)
        let clean = Pair().run()
        let hello = clean.clientToServer[0]
        let request: [UInt8] = {
            let c = QNSPConnection(client: .init(username: "a", user: Keys.user, pinnedHostKey: nil))
            try? c.start()
            return c.takeOutbound()
        }()
        var errors = 0
        for i in 0..<3000 {
            let server = QNSPConnection(server: .init(hostKeys: [Keys.host]) { _, _ in .accept })
            let input: [UInt8]
            switch i % 4 {
            case 0: input = rng.bytes(Int.random(in: 0...2000, using: &rng))
            case 1: input = Array("QNSP".utf8) + rng.bytes(Int.random(in: 0...3000, using: &rng))
            case 2: input = Self.mutate(request, &rng)
            default: input = Self.mutate(hello, &rng)
            }
            do {
                // Deliver in two pieces to exercise partial-record buffering.
                let cut = Int.random(in: 0...input.count, using: &rng)
                _ = try server.receive(Array(input[..<cut]))
                _ = try server.receive(Array(input[cut...]))
            } catch {
                errors += 1
                #expect(server.isClosed)
            }
        }
        #expect(errors > 1500)
    }

    /// A server-role connection put straight into the established state with known keys.
    static func establishedServer(secret: TrafficSecret) throws -> QNSPConnection {
        let c = QNSPConnection(server: .init(hostKeys: [Keys.host]) { _, _ in .accept })
        c.opener = try CellOpener(algorithm: .aes256GCM, secret: secret, cellSize: 768)
        c.sealer = try CellSealer(algorithm: .aes256GCM, secret: TrafficSecret(secret: SecretBytes(copying: [UInt8](repeating: 9, count: 32))), cellSize: 768)
        c.phase = .established
        return c
    }

    @Test("an established connection fed 3,000 mutated cell streams: forged bytes never get through")
    func establishedCells() throws {
        var rng = TestRNG(seed: 3)
        let secret = TrafficSecret(secret: SecretBytes(copying: [UInt8](repeating: 0x5a, count: 32)))
        let sealer = try CellSealer(algorithm: .aes256GCM, secret: secret, cellSize: 768)
        let plain = (0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var stream: [UInt8] = []
        var offset = 0
        while offset < plain.count {
            let n = min(749, plain.count - offset)
            stream += try sealer.seal(type: .data, payload: Array(plain[offset..<(offset + n)]))
            offset += n
            if offset == 2247 {
                stream += try sealer.seal(type: .ping, payload: [1])
                stream += try sealer.seal(type: .keyUpdate, payload: [0])
                try sealer.updateKey()
                stream += try sealer.seal(type: .padding, payload: [])
            }
        }
        stream += try sealer.seal(type: .close, payload: [0])
        // The clean stream is accepted in full.
        let clean = try Self.establishedServer(secret: secret)
        let (all, events) = try clean.receive(stream)
        #expect(all == plain && events.last == .closed(code: 0, reason: ""))

        var errors = 0
        for _ in 0..<3000 {
            let mutated = Self.mutate(stream, &rng)
            let conn = try Self.establishedServer(secret: secret)
            var got: [UInt8] = []
            var threw = false
            var rest = mutated[...]
            while !rest.isEmpty && !threw {
                let piece = rest.prefix(Int.random(in: 1...2000, using: &rng))
                rest = rest.dropFirst(piece.count)
                do { got += try conn.receive(Array(piece)).data } catch { threw = true }
            }
            #expect(got == Array(plain.prefix(got.count)), "forged bytes were delivered")
            let wholeCells = mutated.count / 768 * 768
            if Array(mutated.prefix(wholeCells)) != Array(stream.prefix(wholeCells)) && !threw {
                Issue.record("a modified cell was accepted")
            }
            if threw { errors += 1; #expect(conn.isClosed) }
        }
        #expect(errors > 2000)
    }
}
