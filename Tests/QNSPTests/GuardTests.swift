@testable import QNSP
import QNSPCrypto
import Testing

@Suite("Handshake guard: replays, cookies, clock skew, rate limits, held authorization")
struct GuardTests {
    /// The records of one flight, split at their headers (clear records only).
    static func recordTypes(_ flight: [UInt8]) -> [UInt8] {
        var types: [UInt8] = []
        var i = 0
        while i + ClearRecord.headerSize <= flight.count, Array(flight[i..<(i + 4)]) == ClearRecord.magic {
            types.append(flight[i + 5])
            let cell = Int(flight[i + 6]) << 8 | Int(flight[i + 7])
            let body = Int(flight[i + 8]) << 24 | Int(flight[i + 9]) << 16 | Int(flight[i + 10]) << 8 | Int(flight[i + 11])
            i += ClearRecord.paddedSize(bodyLength: body, cellSize: cell)
        }
        return types
    }

    @Test("a replayed client hello is refused before any KEM work; the original session is unaffected")
    func replayRefused() throws {
        let guardian = QNSPHandshakeGuard()
        let original = Pair(handshakeGuard: guardian).run()
        #expect(original.established)
        let hello = original.clientToServer[0]
        let server = QNSPConnection(server: .init(hostKeys: [Keys.host], handshakeGuard: guardian) { _, _ in .accept })
        #expect(throws: QNSPError.handshakeRefused("replayed client hello")) { _ = try server.receive(hello) }
        let answer = server.takeOutbound()
        #expect(Self.recordTypes(answer) == [ClearRecord.MessageType.reject.rawValue])
        #expect(guardian.statistics.replays == 1)
        #expect(guardian.statistics.served == 1)
    }

    @Test("under load the server answers with a Retry; the client resends with the cookie and logs in")
    func cookieRound() throws {
        var policy = QNSPHandshakeGuard.Policy()
        policy.cookies = .always
        let guardian = QNSPHandshakeGuard(policy: policy)
        let p = Pair(handshakeGuard: guardian).run()
        #expect(p.established, "\(String(describing: p.serverError)) \(String(describing: p.clientError))")
        #expect(Self.recordTypes(p.serverToClient[0]) == [ClearRecord.MessageType.retry.rawValue])
        #expect(p.clientEvents.contains(.retried(clockOffset: 0)))
        #expect(guardian.statistics.retries == 1)
        #expect(p.client.sessionInfo?.exporterSecret == p.server.sessionInfo?.exporterSecret)
    }

    @Test("a client whose clock is off by an hour gets the server's time in a Retry and still logs in")
    func clockSkew() throws {
        let serverClock = ManualClock()
        let clientClock = ManualClock(serverClock.now - 3600)
        let guardian = QNSPHandshakeGuard(clock: serverClock.function)
        let p = Pair(handshakeGuard: guardian, clientClock: clientClock.function).run()
        #expect(p.established)
        #expect(p.clientEvents.contains(.retried(clockOffset: 3600)))
    }

    @Test("a captured hello replayed after the replay window gets only a Retry it cannot answer")
    func oldHelloReplay() throws {
        let clock = ManualClock()
        let guardian = QNSPHandshakeGuard(clock: clock.function)
        let original = Pair(handshakeGuard: guardian, clientClock: clock.function).run()
        #expect(original.established)
        clock.advance(3 * guardian.memory)  // the filter has forgotten it; its time is now far off
        let server = QNSPConnection(server: .init(hostKeys: [Keys.host], handshakeGuard: guardian) { _, _ in .accept })
        _ = try server.receive(original.clientToServer[0])
        #expect(Self.recordTypes(server.takeOutbound()) == [ClearRecord.MessageType.retry.rawValue])
        // Sending the old hello again (the attacker cannot reseal it with the cookie) is refused.
        #expect(throws: QNSPError.handshakeRefused("missing, wrong or expired cookie")) { _ = try server.receive(original.clientToServer[0]) }
    }

    @Test("cookies are bound to the client's address and to the hello's encapsulation, and expire")
    func cookieBinding() {
        let clock = ManualClock()
        let guardian = QNSPHandshakeGuard(clock: clock.function)
        let fp = QNSPHandshakeGuard.fingerprint([1, 2, 3])
        let cookie = guardian.makeCookie(now: clock.now, peer: [127, 0, 0, 1], fingerprint: fp)
        #expect(guardian.verifyCookie(cookie, now: clock.now, peer: [127, 0, 0, 1], fingerprint: fp))
        #expect(!guardian.verifyCookie(cookie, now: clock.now, peer: [127, 0, 0, 2], fingerprint: fp))
        #expect(!guardian.verifyCookie(cookie, now: clock.now, peer: [127, 0, 0, 1], fingerprint: fp ^ 1))
        #expect(!guardian.verifyCookie(cookie, now: clock.now + guardian.policy.cookieLifetime + 1, peer: [127, 0, 0, 1], fingerprint: fp))
        var flipped = cookie
        flipped[10] ^= 1
        #expect(!guardian.verifyCookie(flipped, now: clock.now, peer: [127, 0, 0, 1], fingerprint: fp))
        #expect(!guardian.verifyCookie(Array(cookie.dropLast()), now: clock.now, peer: [127, 0, 0, 1], fingerprint: fp))
    }

    @Test("a second Retry is refused by the client")
    func secondRetry() throws {
        let client = QNSPConnection(client: .init(username: "alice", user: Keys.user, pinnedHostKey: Keys.host.publicKey))
        try client.start()
        _ = client.takeOutbound()
        let retry = ClearRecord(version: 1, type: .retry, cellSize: 768,
                                body: HandshakeMessages.Retry(serverTime: 5, cookie: [1, 2, 3]).encoded()).encoded()
        _ = try client.receive(retry)
        #expect(throws: QNSPError.unexpectedRetry) { _ = try client.receive(retry) }
    }

    @Test("each source address has a handshake budget; other addresses are not affected")
    func perSourceRate() throws {
        var policy = QNSPHandshakeGuard.Policy()
        policy.perSourceBurst = 3
        policy.perSourcePerSecond = 1
        let clock = ManualClock()
        let guardian = QNSPHandshakeGuard(policy: policy, clock: clock.function)
        var hello = HandshakeMessages.ClientHello(
            versions: [1], ciphers: [1], serverKeyID: [UInt8](repeating: 0, count: 8), time: clock.now,
            ephemeralKey: [], encapsulation: [], sealedPayload: [])
        for i in 0..<3 {
            hello.encapsulation = [UInt8(i)]
            #expect(guardian.check(hello, peer: [10, 0, 0, 1], retried: false) == .proceed)
        }
        hello.encapsulation = [9]
        #expect(guardian.check(hello, peer: [10, 0, 0, 1], retried: false) == .rateLimited)
        #expect(guardian.check(hello, peer: [10, 0, 0, 2], retried: false) == .proceed)
        clock.advance(1)
        hello.encapsulation = [10]
        #expect(guardian.check(hello, peer: [10, 0, 0, 1], retried: false) == .proceed)
    }

    @Test("the host key request must be a third of the announcement; the announcement is signed once")
    func announcementAmplification() throws {
        let request = HandshakeMessages.HostKeyRequest(nonce: [UInt8](repeating: 1, count: 32), versions: [1])
        let short = ClearRecord(version: 1, type: .hostKeyRequest, cellSize: 768, body: request.encoded()).encoded()
        let server = QNSPConnection(server: .init(hostKeys: [Keys.host]) { _, _ in .accept })
        #expect(throws: QNSPError.malformedHandshake("host key request shorter than a third of the announcement")) { _ = try server.receive(short) }
        let padded = HandshakeMessages.HostKeyRequest.padded(nonce: request.nonce, versions: [1], cellSize: 768)
        let record = ClearRecord(version: 1, type: .hostKeyRequest, cellSize: 768, body: padded.encoded()).encoded()
        let params = QNSPConnection.ServerParameters(hostKeys: [Keys.host]) { _, _ in .accept }
        var answers: [[UInt8]] = []
        for _ in 0..<2 {
            let s = QNSPConnection(server: params)
            _ = try s.receive(record)
            answers.append(s.takeOutbound())
        }
        #expect(answers[0] == answers[1])  // the same signature: computed once, not per request
        #expect(answers[0].count <= 3 * record.count)
    }

    /// A client and server moved up to the client's ClientAuth (not yet delivered).
    static func upToClientAuth(username: String = "alice") throws -> (QNSPConnection, QNSPConnection, [UInt8]) {
        let client = QNSPConnection(client: .init(username: username, user: Keys.user, pinnedHostKey: Keys.host.publicKey))
        let server = QNSPConnection(server: .init(hostKeys: [Keys.host]) { _, _ in .accept })
        try client.start()
        _ = try server.receive(client.takeOutbound())
        _ = try client.receive(server.takeOutbound())
        return (client, server, client.takeOutbound())
    }

    @Test("while the policy decides, input is held; an accept delivers it in order")
    func heldInput() throws {
        let (client, server, auth) = try Self.upToClientAuth()
        let (_, events) = try server.receive(auth)
        #expect(events == [.authorizationRequired(username: "alice", key: Keys.user.publicKey)])
        #expect(server.isAwaitingAuthorization)
        #expect(server.takeOutbound().isEmpty)  // no answer until the policy has decided
        let accepted = try server.completeAuthorization(.accept)
        #expect(server.isEstablished)
        #expect(accepted.count == 1)
        _ = try client.receive(server.takeOutbound())
        #expect(client.isEstablished)
    }

    @Test("a refusal sends only the generic text; the reason goes to the server's error")
    func genericRefusal() throws {
        let (client, server, auth) = try Self.upToClientAuth()
        _ = try server.receive(auth)
        #expect(throws: QNSPError.userNotAuthorized("no account 'alice'")) { _ = try server.completeAuthorization(.reject("no account 'alice'")) }
        #expect(throws: QNSPError.userNotAuthorized(QNSPConnection.genericRefusal)) { _ = try client.receive(server.takeOutbound()) }
    }

    @Test("user names with control characters are refused; peer texts are escaped")
    func controlCharacters() throws {
        let (_, server, auth) = try Self.upToClientAuth(username: "root\nAccepted root")
        #expect(throws: QNSPError.malformedHandshake("user name contains control characters")) { _ = try server.receive(auth) }
        let reject = HandshakeMessages.Reject(code: .other, message: "\u{1b}]0;owned\u{07}\u{1b}[2J bye")
        let decoded = try HandshakeMessages.Reject(decoding: reject.encoded())
        #expect(decoded.message == "\\x1b]0;owned\\x07\\x1b[2J bye")
        #expect(!decoded.message.unicodeScalars.contains { $0.value < 0x20 })
    }
}
