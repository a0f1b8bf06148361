import QSSHTestSupport
import QPQProtocol
import Testing

@Suite("qpq/1 codec")
struct CodecTests {
    @Test("every message type round-trips through encode and decode")
    func roundTripEveryType() throws {
        var rng = QPQRandom(seed: 1)
        var requestTypes = Set<UInt8>(), responseTypes = Set<UInt8>()
        for _ in 0..<5000 {
            let frame = rng.frame()
            let wire = try QPQCodec.encode(frame)
            var splitter = QPQFrameSplitter()
            splitter.append(wire)
            let body = try #require(try splitter.next())
            #expect(try QPQCodec.decodeBody(body) == frame)
            #expect(try splitter.next() == nil)
            switch frame.message {
            case .request(let r): requestTypes.insert(r.type)
            case .response(let r): responseTypes.insert(r.type)
            case .push: break
            }
        }
        #expect(requestTypes.count == 26)
        #expect(responseTypes.count == 21)
    }

    @Test("the splitter reassembles frames cut at every byte boundary")
    func splitterBoundaries() throws {
        var rng = QPQRandom(seed: 2)
        let frames = (0..<40).map { _ in rng.frame() }
        var wire: [UInt8] = []
        for f in frames { wire += try QPQCodec.encode(f) }
        var splitter = QPQFrameSplitter()
        var decoded: [QPQFrame] = []
        var i = 0
        while i < wire.count {
            let n = Int.random(in: 1...97, using: &rng)
            splitter.append(wire[i..<min(wire.count, i + n)])
            i += n
            while let body = try splitter.next() { decoded.append(try QPQCodec.decodeBody(body)) }
        }
        #expect(decoded == frames)
        #expect(splitter.bufferedCount == 0)
    }

    @Test("a length over 2 MiB is refused before its bytes arrive, and the stream stays failed")
    func oversizedFrame() throws {
        var splitter = QPQFrameSplitter()
        let n = QPQLimits.maxFrame + 1
        splitter.append([UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)])
        let e = #expect(throws: QPQDecodeError.self) { try splitter.next() }
        guard case .tooLarge(let length)? = e else { Issue.record("wrong error \(String(describing: e))"); return }
        #expect(length == n)
        #expect(e?.breaksStream == true)
        #expect(e?.errorCode == .tooLarge)
        splitter.append([0, 0, 0, 1, 1])
        #expect(throws: QPQDecodeError.self) { try splitter.next() }
    }

    @Test("version, type, trailing bytes, limits and names are checked with clear errors")
    func clearErrors() throws {
        let ping = try QPQCodec.encodeBody(QPQFrame(requestId: 7, message: .request(.ping)))
        var v2 = ping
        v2[0] = 2
        #expect(throws: QPQDecodeError.unsupportedVersion(2)) { try QPQCodec.decodeBody(v2) }
        var unknown = ping
        unknown[1] = 0x3E
        #expect(throws: QPQDecodeError.unknownType(0x3E)) { try QPQCodec.decodeBody(unknown) }
        let e = #expect(throws: QPQDecodeError.self) { try QPQCodec.decodeBody(ping + [0]) }
        guard case .malformed(let why)? = e else { Issue.record("not malformed"); return }
        #expect(why.contains("trailing"))
        #expect(throws: QPQDecodeError.emptyFrame) { try QPQCodec.decodeBody([]) }
        var zeroId = ping
        zeroId[5] = 0
        #expect(throws: QPQDecodeError.self) { try QPQCodec.decodeBody(zeroId) }
        // A user name with an upper-case letter is refused by encoder and decoder.
        #expect(throws: QPQEncodeError.self) {
            try QPQCodec.encodeBody(QPQFrame(requestId: 1, message: .request(.lookupUser(user: "Alice"))))
        }
        var lookup = try QPQCodec.encodeBody(QPQFrame(requestId: 1, message: .request(.lookupUser(user: "alice"))))
        lookup[7] = UInt8(ascii: "A")
        #expect(throws: QPQDecodeError.self) { try QPQCodec.decodeBody(lookup) }
        // A message over 1 MiB cannot be encoded.
        let big = QPQRequest.send(groupId: [1], epoch: 0, token: [UInt8](repeating: 0, count: 32),
                                  message: [UInt8](repeating: 0, count: QPQLimits.maxMessage + 1))
        #expect(throws: QPQEncodeError.self) { try QPQCodec.encode(QPQFrame(requestId: 1, message: .request(big))) }
        // A count over its limit is refused before the entries are read.
        var ack = try QPQCodec.encodeBody(QPQFrame(requestId: 1, message: .request(.ack(messageIds: []))))
        ack[6] = 0xFF
        ack[7] = 0xFF
        let c = #expect(throws: QPQDecodeError.self) { try QPQCodec.decodeBody(ack) }
        guard case .malformed(let text)? = c else { Issue.record("not malformed"); return }
        #expect(text.contains("over the limit"))
    }

    @Test("fuzz: 120,000 random and mutated bodies never crash; whatever decodes re-encodes to the same bytes")
    func fuzz() throws {
        var rng = QPQRandom(seed: 0x5150_0001)
        var accepted = 0, refused = 0
        var valid: [[UInt8]] = []
        for _ in 0..<200 { valid.append(try QPQCodec.encodeBody(rng.frame())) }
        for i in 0..<120_000 {
            var body: [UInt8]
            switch i % 4 {
            case 0:
                // Random bytes behind a valid header (so the field decoders are reached).
                body = [1, UInt8.random(in: 0...255, using: &rng)] + rng.bytes(Int.random(in: 4...80, using: &rng))
            case 1:
                body = rng.bytes(Int.random(in: 0...40, using: &rng))
            default:
                // A valid body with bytes flipped, cut or appended.
                body = valid[Int.random(in: 0..<valid.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0 where !body.isEmpty: body[Int.random(in: 0..<body.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                    case 1 where !body.isEmpty: body.removeLast(Int.random(in: 1...min(8, body.count), using: &rng))
                    default: body += rng.bytes(Int.random(in: 1...4, using: &rng))
                    }
                }
            }
            do {
                let frame = try QPQCodec.decodeBody(body)
                #expect(try QPQCodec.encodeBody(frame) == body, "input \(i) decoded but did not re-encode to itself")
                accepted += 1
            } catch {
                refused += 1
            }
        }
        // Also through the splitter: random streams never crash it.
        for _ in 0..<2000 {
            var s = QPQFrameSplitter()
            s.append(rng.bytes(Int.random(in: 0...64, using: &rng)))
            while let body = try? s.next() { _ = try? QPQCodec.decodeBody(body) }
        }
        #expect(accepted + refused == 120_000)
        #expect(accepted > 100, "mutations should sometimes stay valid (accepted \(accepted))")
        #expect(refused > 100_000)
    }

    @Test("file offers round-trip; fuzz: 100,000 random and mutated offers never crash, whatever decodes re-encodes to itself")
    func fileOfferFuzz() throws {
        var rng = QPQRandom(seed: 0x5150_F11E)
        var valid: [[UInt8]] = []
        for _ in 0..<300 {
            let offer = rng.fileOffer()
            let bytes = try offer.encoded()
            #expect(QPQFileOffer.isOffer(bytes))
            #expect(try QPQFileOffer(decoding: bytes) == offer)
            valid.append(bytes)
        }
        #expect(!QPQFileOffer.isOffer(Array("hello".utf8)))
        // Bad chunk size and a name over 255 bytes cannot be encoded.
        var bad = rng.fileOffer()
        bad.chunkSize = 16
        #expect(throws: QPQEncodeError.self) { try bad.encoded() }
        bad = rng.fileOffer()
        bad.name = String(repeating: "a", count: 256)
        #expect(throws: QPQEncodeError.self) { try bad.encoded() }
        var accepted = 0, refused = 0
        for i in 0..<100_000 {
            var body: [UInt8]
            if i % 3 == 0 {
                body = QPQFileOffer.magic + [1, 1] + rng.bytes(Int.random(in: 0...200, using: &rng))
            } else {
                body = valid[Int.random(in: 0..<valid.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0 where !body.isEmpty: body[Int.random(in: 0..<body.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                    case 1 where !body.isEmpty: body.removeLast(Int.random(in: 1...min(8, body.count), using: &rng))
                    default: body += rng.bytes(Int.random(in: 1...4, using: &rng))
                    }
                }
            }
            do {
                let offer = try QPQFileOffer(decoding: body)
                #expect(try offer.encoded() == body, "offer \(i) decoded but did not re-encode to itself")
                accepted += 1
            } catch {
                refused += 1
            }
        }
        #expect(accepted > 100 && refused > 50_000, "accepted \(accepted), refused \(refused)")
    }
}
