import QSSHTestSupport
import Foundation
@testable import QNSP
import QNSPCrypto
import Testing

/// A client and a server stealth session with QNSP connections on top, wired in memory.
final class StealthPair {
    let line = StealthLine(hostKey: Keys.host)
    let filter: StealthReplayFilter
    let client: StealthSession
    let server: StealthSession
    let qnsp = Pair()
    /// Every client write (the first is Rc and the hello) and server write, in order.
    var clientWrites: [[UInt8]] = []
    var serverWrites: [[UInt8]] = []
    var clientGot: [UInt8] = []
    var serverGot: [UInt8] = []
    var serverEvents: [StealthSession.Event] = []
    var rng = TestRNG(seed: 7)

    init(clock: @escaping @Sendable () -> UInt64 = QNSPHandshakeGuard.wallClock, filter: StealthReplayFilter? = nil) throws {
        self.filter = filter ?? StealthReplayFilter(startTime: Int64(clock()) - 10)
        client = try StealthSession(role: .client, line: line, clock: clock)
        server = try StealthSession(role: .server(self.filter), line: line, clock: clock)
    }

    /// Moves bytes both ways, cut into random pieces, until nothing moves; QNSP bytes that come
    /// out of one stealth session go into the QNSP connection on that side.
    func pump() throws {
        for _ in 0..<64 {
            var moved = false
            let c = client.takeOutbound()
            if !c.isEmpty {
                moved = true
                clientWrites += c
                try feed(c.flatMap { $0 }, to: server, got: &serverGot)
            }
            let s = server.takeOutbound()
            if !s.isEmpty {
                moved = true
                serverWrites += s
                try feed(s.flatMap { $0 }, to: client, got: &clientGot)
            }
            if !moved { return }
        }
    }

    private func feed(_ bytes: [UInt8], to session: StealthSession, got: inout [UInt8]) throws {
        var i = 0
        while i < bytes.count {
            let n = min(bytes.count - i, Int.random(in: 1...3000, using: &rng))
            if let e = try session.receive(Array(bytes[i..<i + n]), deliver: { got += $0 }), session === server { serverEvents.append(e) }
            i += n
        }
    }
}

/// Runs a whole QNSP handshake and data exchange through two stealth sessions.
func runQNSPOverStealth(_ p: StealthPair, data: [UInt8]) throws -> [UInt8] {
    try p.qnsp.client.start()
    for _ in 0..<16 {
        let c = p.qnsp.client.takeOutbound()
        if !c.isEmpty { try p.client.seal(c) }
        let s = p.qnsp.server.takeOutbound()
        if !s.isEmpty { try p.server.seal(s) }
        try p.pump()
        if !p.serverGot.isEmpty { p.qnsp.deliver(p.serverGot, to: p.qnsp.server, isServer: true); p.serverGot = [] }
        if !p.clientGot.isEmpty { p.qnsp.deliver(p.clientGot, to: p.qnsp.client, isServer: false); p.clientGot = [] }
        if c.isEmpty && s.isEmpty && p.qnsp.established { break }
    }
    #expect(p.qnsp.clientError == nil && p.qnsp.serverError == nil)
    try p.client.seal(try p.qnsp.client.sealData(data))
    try p.pump()
    p.qnsp.deliver(p.serverGot, to: p.qnsp.server, isServer: true)
    p.serverGot = []
    return p.qnsp.serverReceived
}

@Suite("Stealth (sans-I/O)")
struct StealthTests {
    // MARK: Stealth line

    @Test("the stealth line: derived from the host seed (deterministic, differs per host), printed and parsed back")
    func lineRoundTrip() throws {
        let a = StealthLine(hostKey: Keys.host), b = StealthLine(hostKey: Keys.host), c = StealthLine(hostKey: Keys.otherHost)
        #expect(a == b && a != c)
        let text = a.description
        #expect(text.hasPrefix("qnsp-stealth1 ") && text.utf8.count == 14 + 44)
        #expect(try StealthLine(parsing: text) == a)
        #expect(try StealthLine(parsing: "  \(text)\n") == a)
        // The secret is not the seed, nor any of its bytes in order.
        #expect(a.secret.withUnsafeBytes { Array($0) } != Keys.host.kemKey.seed)
    }

    @Test("the stealth line parser refuses every malformed form with malformedLine")
    func lineRejects() throws {
        let good = StealthLine(hostKey: Keys.host).description
        let body = String(good.dropFirst(14))
        let bad = [
            "", "qnsp-stealth1", "qnsp-stealth1 ", "qnsp-stealth2 \(body)", "qnsp-stealth1  \(body)", "qnsp-stealth1\t\(body)",
            "qnsp-stealth1 \(body.dropLast())", "qnsp-stealth1 \(body)A", "qnsp-stealth1 \(body) x",
            "qnsp-stealth1 \(body.replacingOccurrences(of: "=", with: "A"))", "qnsp-stealth1 \(String(repeating: "!", count: 44))",
            "QNSP-STEALTH1 \(body)", "qnsp-stealth1 \(String(repeating: "A", count: 43))B",  // non-canonical trailing bits
        ]
        for text in bad {
            #expect(throws: StealthError.self, "\(text)") { try StealthLine(parsing: text) }
        }
    }

    @Test("stealth line parser fuzz: 20,000 random and mutated lines end in malformedLine or a line that prints back the same")
    func lineFuzz() {
        var rng = TestRNG(seed: 11)
        let good = Array(StealthLine(hostKey: Keys.host).description.utf8)
        let alphabet = Array("qnsp-stealth1 ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\n\u{0}é".utf8)
        var parsed = 0
        for i in 0..<20_000 {
            var b: [UInt8]
            if i % 3 == 0 {
                b = (0..<Int.random(in: 0...80, using: &rng)).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] }
            } else {
                b = FuzzTests.mutate(good, &rng)
            }
            let text = String(decoding: b, as: UTF8.self)
            do {
                let line = try StealthLine(parsing: text)
                parsed += 1
                #expect(line.description == text.trimmingCharacters(in: .whitespacesAndNewlines), "\(text)")
            } catch {
                guard case .malformedLine = error else { Issue.record("unexpected \(error)"); continue }
            }
        }
        #expect(parsed < 20_000)
    }

    // MARK: Sessions

    @Test("a QNSP handshake and 300 KB of data through stealth sessions, bytes cut at random, hash equal")
    func tunnelThroughStealth() throws {
        let p = try StealthPair()
        var rng = TestRNG(seed: 3)
        let data = rng.bytes(300_000)
        let got = try runQNSPOverStealth(p, data: data)
        #expect(KeyDerivation.sha256(got) == KeyDerivation.sha256(data))
        #expect(p.serverEvents.contains(.accepted))
        #expect(p.qnsp.established)
        // Every write is a frame whose length (beyond the 32-byte nonces) is not a whole number of cells.
        let sizes = p.clientWrites.dropFirst().map(\.count) + p.serverWrites.dropFirst().map(\.count)
        #expect(sizes.filter { $0 % 768 == 0 }.count <= max(1, sizes.count / 50), "\(sizes)")  // chance: about 1 in 768
        #expect(Set(sizes).count > sizes.count / 2, "write sizes repeat: \(sizes)")
    }

    @Test("a server writes nothing before the hello: QNSP bytes it is asked to send are held")
    func serverHoldsUntilHello() throws {
        let filter = StealthReplayFilter(startTime: 0)
        let server = try StealthSession(role: .server(filter), line: StealthLine(hostKey: Keys.host))
        try server.seal([1, 2, 3])
        #expect(server.takeOutbound().isEmpty)
        #expect(!server.isAccepted)
    }

    /// A valid first flight (Rc, hello, the ClientHello record) of a fresh client.
    static func firstFlight(line: StealthLine, clock: @escaping @Sendable () -> UInt64 = QNSPHandshakeGuard.wallClock) throws -> [UInt8] {
        let conn = QNSPConnection(client: .init(username: "alice", user: Keys.user, pinnedHostKey: Keys.host.publicKey))
        try conn.start()
        let s = try StealthSession(role: .client, line: line, clock: clock)
        try s.seal(conn.takeOutbound())
        return s.takeOutbound().flatMap { $0 }
    }

    static func probeOutcome(_ bytes: [UInt8], filter: StealthReplayFilter, line: StealthLine = StealthLine(hostKey: Keys.host)) throws -> (StealthSession, [StealthSession.Event], Int) {
        let policy = StealthSession.ProbePolicy(byteLimit: 20_000...20_000, deadlineMilliseconds: 1...1)
        let server = try StealthSession(role: .server(filter), line: line, probePolicy: policy)
        var events: [StealthSession.Event] = []
        var delivered = 0
        var rng = TestRNG(seed: UInt64(bytes.count))
        var i = 0
        while i < bytes.count {
            let n = min(bytes.count - i, Int.random(in: 1...700, using: &rng))
            if let e = try server.receive(Array(bytes[i..<i + n]), deliver: { delivered += $0.count }) { events.append(e) }
            i += n
        }
        try? server.seal([9, 9, 9])  // refused (closed) for a probe, held while incomplete
        return (server, events, delivered)
    }

    @Test("probes: random bytes, truncated, bit-flipped, replayed, wrong line, stale clock, default-mode hello: nothing delivered, nothing sent, closeProbe only at the byte limit")
    func probes() throws {
        let line = StealthLine(hostKey: Keys.host)
        let filter = StealthReplayFilter(startTime: 0)
        var rng = TestRNG(seed: 5)
        let valid = try Self.firstFlight(line: line)
        // The valid flight itself is accepted (and consumes its nonce in the filter).
        let (ok, okEvents, okDelivered) = try Self.probeOutcome(valid, filter: filter)
        #expect(okEvents == [.accepted] && okDelivered > 0 && !ok.takeOutbound().isEmpty)

        let defaultHello: [UInt8] = try {
            let c = QNSPConnection(client: .init(username: "alice", user: Keys.user, pinnedHostKey: Keys.host.publicKey))
            try c.start()
            return c.takeOutbound()
        }()
        var flipped = try Self.firstFlight(line: line)
        flipped[Int.random(in: 0..<77, using: &rng)] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
        let fresh = try Self.firstFlight(line: line)
        var probes: [(String, [UInt8])] = [
            ("replayed", valid),
            ("truncated", Array(fresh.prefix(Int.random(in: 1..<60, using: &rng)))),
            ("truncated hello", Array(fresh.prefix(60 + Int.random(in: 0..<16, using: &rng)))),  // a whole hello is at least 77 bytes
            ("flipped bit", flipped),
            ("wrong line", try Self.firstFlight(line: StealthLine(hostKey: Keys.otherHost))),
            // 123, not 121: the server's clock may tick between making the flight and reading it.
            ("clock 123 s behind", try Self.firstFlight(line: line, clock: { QNSPHandshakeGuard.wallClock() - 123 })),
            ("clock 123 s ahead", try Self.firstFlight(line: line, clock: { QNSPHandshakeGuard.wallClock() + 123 })),
            ("default-mode ClientHello", defaultHello),
        ]
        for n in [1, 31, 32, 33, 50, 51, 1000, 5000, 10_000] { probes.append(("random \(n)", rng.bytes(n))) }
        for _ in 0..<40 { probes.append(("random", rng.bytes(Int.random(in: 1...10_000, using: &rng)))) }
        for (name, bytes) in probes {
            let (server, events, delivered) = try Self.probeOutcome(bytes, filter: filter)
            #expect(delivered == 0, "\(name): \(server.refusal ?? "accepted")")
            #expect(server.takeOutbound().isEmpty, "\(name) got an answer")
            #expect(!server.isAccepted, "\(name)")
            #expect(events == (bytes.count >= 20_000 ? [.closeProbe] : []), "\(name): \(events)")
        }
        // Clocks within the window are accepted.
        for skew: Int64 in [-118, 118] {
            let f = try Self.firstFlight(line: line, clock: { UInt64(Int64(QNSPHandshakeGuard.wallClock()) + skew) })
            #expect(try Self.probeOutcome(f, filter: filter).1 == [.accepted])
        }
    }

    @Test("the byte limit is counted over everything received and drawn from the policy's range")
    func byteLimit() throws {
        var rng = TestRNG(seed: 9)
        let policy = StealthSession.ProbePolicy(byteLimit: 3000...9000, deadlineMilliseconds: 5_000...30_000)
        var limits = Set<Int>()
        for _ in 0..<50 {
            let s = try StealthSession(role: .server(StealthReplayFilter(startTime: 0)), line: StealthLine(hostKey: Keys.host), probePolicy: policy)
            #expect(policy.byteLimit.contains(s.probeByteLimit))
            #expect(s.probeDeadline >= .seconds(5) && s.probeDeadline <= .seconds(30))
            limits.insert(s.probeByteLimit)
            var total = 0
            var closed = false
            while !closed {
                let n = Int.random(in: 1...500, using: &rng)
                total += n
                closed = try s.receive(rng.bytes(n), deliver: { _ in Issue.record("delivered") }) == .closeProbe
                #expect(closed == (total >= s.probeByteLimit))
            }
        }
        #expect(limits.count > 30)
        let refusing = try StealthSession.refusing(line: StealthLine(hostKey: Keys.host))
        let valid = try Self.firstFlight(line: StealthLine(hostKey: Keys.host))
        #expect(try refusing.receive(valid, deliver: { _ in Issue.record("delivered") }) != .accepted)
        #expect(refusing.takeOutbound().isEmpty && refusing.isProbe)
    }

    @Test("frame fuzz: 3,000 mutated server and client streams end in a probe or a StealthError, never a crash or a delivery of altered bytes")
    func frameFuzz() throws {
        var rng = TestRNG(seed: 21)
        let line = StealthLine(hostKey: Keys.host)
        let flight = try Self.firstFlight(line: line)
        let filter = StealthReplayFilter(startTime: 0)
        for i in 0..<3000 {
            if i % 2 == 0 {
                let bytes = FuzzTests.mutate(flight, &rng)
                do {
                    let (server, _, _) = try Self.probeOutcome(bytes, filter: StealthReplayFilter(startTime: 0))
                    if !server.isAccepted { #expect(server.takeOutbound().isEmpty) }
                } catch is StealthError {
                    continue  // a valid hello followed by a damaged frame: the session fails
                }
            } else {
                // A fresh pair: the server's answer depends on the client's nonce.
                let client = try StealthSession(role: .client, line: line)
                let server = try StealthSession(role: .server(filter), line: line)
                #expect(try server.receive(client.takeOutbound().flatMap { $0 }, deliver: { _ in }) == .accepted)
                try server.seal(rng.bytes(Int.random(in: 1...5000, using: &rng)))
                let answer = server.takeOutbound().flatMap { $0 }
                let bytes = FuzzTests.mutate(answer, &rng)
                do {
                    _ = try client.receive(bytes, deliver: { _ in })
                    try client.receiveEOF()
                } catch {
                    continue
                }
                #expect(answer.starts(with: bytes), "a modified stream was accepted")
            }
        }
    }

    // MARK: Replay filter

    @Test("replay filter: window ±120 s, start time, replays across a rotation, capacity fails closed")
    func replayFilter() {
        let f = StealthReplayFilter(startTime: 1000, capacity: 3)
        let n1 = [UInt8](repeating: 1, count: 32), n2 = [UInt8](repeating: 2, count: 32)
        #expect(f.check(nonce: n1, time: 2000, now: 2121) == .outsideWindow)
        #expect(f.check(nonce: n1, time: 2000, now: 1879) == .outsideWindow)
        #expect(f.check(nonce: n1, time: 999, now: 1050) == .beforeStart)
        #expect(f.check(nonce: n1, time: 2000, now: 2120) == .accepted)
        #expect(f.check(nonce: n1, time: 2100, now: 2130) == .replayed)
        #expect(f.check(nonce: n2, time: 2300, now: 2365) == .accepted)  // rotates: n1 is now in the previous generation
        #expect(f.check(nonce: n1, time: 2300, now: 2365) == .replayed)
        #expect(f.check(nonce: [3] + n1.dropFirst(), time: 2365, now: 2365) == .accepted)
        #expect(f.check(nonce: [4] + n1.dropFirst(), time: 2365, now: 2365) == .accepted)
        #expect(f.check(nonce: [5] + n1.dropFirst(), time: 2365, now: 2365) == .full)
    }

    // MARK: Randomness of what is on the wire

    @Test("1,000 stealth first flights pass chi-square (p = 0.001) and per-bit-position frequency tests; 1,000 default-mode first flights fail both")
    func firstFlightsLookUniform() throws {
        let line = StealthLine(hostKey: Keys.host)
        var stealth: [[UInt8]] = [], plain: [[UInt8]] = []
        for _ in 0..<1000 {
            stealth.append(try Self.firstFlight(line: line))
            let c = QNSPConnection(client: .init(username: "alice", user: Keys.user, pinnedHostKey: Keys.host.publicKey))
            try c.start()
            plain.append(c.takeOutbound())
        }
        let prefix = 2048
        #expect(stealth.allSatisfy { $0.count >= prefix } && plain.allSatisfy { $0.count >= prefix })
        let zLimit = ByteStatistics.zCritical(tests: prefix * 8)
        func verdict(_ flights: [[UInt8]]) -> (chi: Double, bitZ: Double, posZ: Double) {
            let all = flights.flatMap { $0 }
            return (ByteStatistics.chiSquare(all), ByteStatistics.bitFrequencyZ(all).map(abs).max() ?? 0,
                    ByteStatistics.positionalBitMaxZ(flights, prefix: prefix))
        }
        let s = verdict(stealth), d = verdict(plain)
        print("stealth first flights: chi2 \(s.chi) (critical \(ByteStatistics.chiSquareCritical255)), max |z| bit \(s.bitZ), positional \(s.posZ) (critical \(zLimit))")
        print("default first flights: chi2 \(d.chi), max |z| bit \(d.bitZ), positional \(d.posZ)")
        #expect(s.chi < ByteStatistics.chiSquareCritical255)
        #expect(s.bitZ < ByteStatistics.zCritical(tests: 8))
        #expect(s.posZ < zLimit)
        #expect(d.chi > ByteStatistics.chiSquareCritical255)
        #expect(d.posZ > zLimit)
        // The classic Elligator mistake: an X25519 point's top bit is always 0. In default mode the
        // ephemeral key's and the encapsulation's X25519 parts end at bytes 1249 and 2369 of the
        // record (12-byte header, 22 bytes of fields, then 1184 + 32 and 1088 + 32): their top
        // bits are all 0, and the top bit of every stealth byte position is uniform.
        #expect(plain.allSatisfy { $0[1249] & 0x80 == 0 && $0[2369] & 0x80 == 0 })
        var top = [Int](repeating: 0, count: prefix)
        for f in stealth { for i in 0..<prefix where f[i] & 0x80 != 0 { top[i] += 1 } }
        let topZ = top.map { abs((Double($0) - 500) / 250.0.squareRoot()) }.max() ?? 0
        #expect(topZ < ByteStatistics.zCritical(tests: prefix), "top bits: max |z| \(topZ)")
        // Lengths vary (randomized padding and chunks), and are not whole cells.
        let lengths = Set(stealth.map(\.count))
        #expect(lengths.count > 300, "only \(lengths.count) distinct first-flight lengths")
        #expect(Set(plain.map(\.count)).count == 1)
        print("stealth first-flight lengths: \(lengths.min() ?? 0)…\(lengths.max() ?? 0), \(lengths.count) distinct")
        // The first-packet rules of Wu et al. (USENIX Security 2023) flag random-looking first packets:
        // they flag plain stealth mode (no mimicry exists yet), as expected. Default mode's zero padding
        // pulls its popcount below 3.4 bits per byte, which the rules exempt.
        let flagged = stealth.filter { ByteStatistics.firstPacketVerdict($0).flagged }.count
        let defaultVerdict = ByteStatistics.firstPacketVerdict(plain[0])
        print("GFW first-packet rules: \(flagged) of 1000 stealth first flights flagged; default mode: \(defaultVerdict)")
        #expect(flagged >= 980)
        #expect(!defaultVerdict.flagged && defaultVerdict.exemptByPopcount)
    }

    @Test("--mimic: 1,000 first flights all pass the first-packet rules (printable prefix), a mimic pair carries a QNSP session, and a mimic flight to a plain server (or the reverse) is a probe")
    func mimicry() throws {
        let line = StealthLine(hostKey: Keys.host)
        var lengths = Set<Int>()
        for _ in 0..<1000 {
            let s = try StealthSession(role: .client, line: line, mimic: true)
            let flight = s.takeOutbound().flatMap { $0 }
            let v = ByteStatistics.firstPacketVerdict(flight)
            #expect(!v.flagged && v.exemptByPrintablePrefix && v.exemptByPrintableRun, "\(v)")
            lengths.insert(flight.prefix { StealthSession.mimicAlphabet.contains($0) }.count)
        }
        #expect(lengths.count > 30, "prefix lengths do not vary: \(lengths.sorted())")
        // A whole session through a mimic pair.
        let filter = StealthReplayFilter(startTime: 0)
        let client = try StealthSession(role: .client, line: line, mimic: true)
        let server = try StealthSession(role: .server(filter), line: line, mimic: true)
        var got: [UInt8] = []
        try client.seal(Array("hello".utf8))
        #expect(try server.receive(client.takeOutbound().flatMap { $0 }, deliver: { got += $0 }) == .accepted)
        #expect(got == Array("hello".utf8))
        // Mismatched settings: silence.
        let plainServer = try StealthSession(role: .server(filter), line: line)
        let mimicClient = try StealthSession(role: .client, line: line, mimic: true)
        #expect(try plainServer.receive(mimicClient.takeOutbound().flatMap { $0 }, deliver: { _ in Issue.record("delivered") }) == nil)
        #expect(plainServer.isProbe && plainServer.takeOutbound().isEmpty)
        let mimicServer = try StealthSession(role: .server(filter), line: line, mimic: true)
        let plainClient = try StealthSession(role: .client, line: line)
        _ = try mimicServer.receive(plainClient.takeOutbound().flatMap { $0 }, deliver: { _ in Issue.record("delivered") })
        #expect(!mimicServer.isAccepted && mimicServer.takeOutbound().isEmpty)
    }

    @Test("the first-packet rules as implemented: popcount bounds and the three printable exemptions")
    func firstPacketRules() {
        #expect(ByteStatistics.firstPacketVerdict([UInt8](repeating: 0x0f, count: 100)).flagged)  // 4 bits per byte, nothing printable
        #expect(ByteStatistics.firstPacketVerdict([UInt8](repeating: 0x07, count: 100)).exemptByPopcount)  // 3 bits
        #expect(ByteStatistics.firstPacketVerdict([UInt8](repeating: 0x1f, count: 100)).exemptByPopcount)  // 5 bits
        let http = Array("GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n\r\n".utf8)
        let v = ByteStatistics.firstPacketVerdict(http)
        #expect(v.exemptByPrintablePrefix && v.exemptByPrintableShare && v.exemptByPrintableRun && !v.flagged)
        var mixed = [UInt8](repeating: 0x8f, count: 60)  // popcount 5 would exempt: use 0x96 (4 bits), not printable
        mixed = mixed.map { _ in 0x96 }
        mixed.replaceSubrange(10..<31, with: Array("abcdefghijklmnopqrstu".utf8))  // a run of 21 printable bytes
        let m = ByteStatistics.firstPacketVerdict(mixed)
        #expect(m.exemptByPrintableRun && !m.exemptByPrintablePrefix && !m.exemptByPrintableShare)
    }
}
