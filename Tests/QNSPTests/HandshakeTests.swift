import QSSHTestSupport
import QNSP
import QNSPCrypto
import Testing

@Suite("Handshake")
struct HandshakeTests {
    @Test("known host: both sides establish with matching session facts")
    func knownHost() throws {
        let p = Pair().run()
        #expect(p.clientError == nil && p.serverError == nil)
        #expect(p.established)
        let c = try #require(p.client.sessionInfo), s = try #require(p.server.sessionInfo)
        #expect(c.exporterSecret == s.exporterSecret && c.exporterSecret.count == 32)
        #expect(s.username == "alice")
        #expect(s.userKeyFingerprint == Keys.user.publicKey.fingerprint)
        #expect(c.hostKey == Keys.host.publicKey)
        #expect(c.cipher == .aes256GCM && c.cellSize == 768 && c.version == 1)
        #expect(!c.firstContact && s.service == "raw")
        #expect(p.clientEvents.contains(.established(c)))
    }

    @Test("two sessions with the same keys derive unrelated secrets (forward secrecy)")
    func freshSecrets() throws {
        let a = Pair().run(), b = Pair().run()
        #expect(a.client.sessionInfo?.exporterSecret != b.client.sessionInfo?.exporterSecret)
    }

    @Test("cipher negotiation follows the client's preference among the server's")
    func cipherChoice() throws {
        var cc = QNSPConfiguration(); cc.ciphers = [.chaCha20Poly1305, .aes256GCM]
        let p = Pair(configuration: cc).run()
        #expect(p.client.sessionInfo?.cipher == .chaCha20Poly1305)
        var sc = QNSPConfiguration(); sc.ciphers = [.aes256GCM]
        var only = QNSPConfiguration(); only.ciphers = [.chaCha20Poly1305]
        let q = Pair(configuration: only, serverConfiguration: sc).run()
        #expect(q.serverError == .noCommonCipher)
        #expect(!q.client.isEstablished)
    }

    @Test("first contact: announced key is offered to the trust hook, then the handshake completes")
    func firstContactAccepted() throws {
        let seen = LockedBox<[String]>([])
        let p = Pair(pinned: .some(nil), trust: { seen.append($0.fingerprint); return true }).run()
        #expect(p.established)
        #expect(seen.value == [Keys.host.publicKey.fingerprint])
        #expect(p.client.sessionInfo?.firstContact == true)
        #expect(p.server.sessionInfo?.firstContact == true)
    }

    @Test("first contact: refusing the host key fails closed before any secret is sent")
    func firstContactRefused() {
        let p = Pair(pinned: .some(nil), trust: { _ in false }).run()
        #expect(p.clientError == .hostKeyNotTrusted(fingerprint: Keys.host.publicKey.fingerprint))
        #expect(!p.client.isEstablished && !p.server.isEstablished)
        #expect(p.clientToServer.count == 1)  // only the host key request
    }

    @Test("pinned key differs from the server's: refused with a clear error on both sides")
    func wrongServerKey() {
        let p = Pair(host: Keys.host, serverHostKeys: [Keys.otherHost]).run()
        #expect(p.serverError == .unknownHostKey)
        guard case .rejectedByPeer(let code, _)? = p.clientError else {
            Issue.record("client error \(String(describing: p.clientError))"); return
        }
        #expect(code == HandshakeMessages.Reject.Code.unknownHostKey.rawValue)
    }

    @Test("a server that cannot decapsulate cannot impersonate the pinned host")
    func impostorServer() {
        // The impostor answers the client's hello with a server hello of its own making.
        let client = QNSPConnection(client: .init(username: "alice", user: Keys.user, pinnedHostKey: Keys.host.publicKey))
        try? client.start()
        let hello = client.takeOutbound()
        // The impostor holds Keys.otherHost; it rewrites the key id so the real server logic runs on its key.
        let impostor = QNSPConnection(server: .init(hostKeys: [Keys.otherHost]) { _, _ in .accept })
        var forged = hello
        let idOffset = ClearRecord.headerSize + 2 + 3  // vectors: versions (1+1), ciphers (1+2)
        for i in 0..<8 { forged[idOffset + i] = Keys.otherHost.publicKey.keyID[i] }
        #expect(throws: QNSPError.clientHelloUndecryptable) { _ = try impostor.receive(forged) }
        // Even a server hello built for another session is refused.
        let other = Pair().run()
        let replayedServerHello = Array(other.serverToClient[0])
        #expect(throws: QNSPError.serverAuthenticationFailed) { _ = try client.receive(replayedServerHello) }
    }

    @Test("user key not in the server's list: permission denied on both sides")
    func wrongUserKey() {
        let p = Pair(user: Keys.otherUser).run()
        #expect(p.serverError == .userNotAuthorized("not in authorized_keys"))
        // The reason stays with the server: the client is told only the generic refusal.
        #expect(p.clientError == .userNotAuthorized(QNSPConnection.genericRefusal))
        #expect(!p.client.isEstablished && !p.server.isEstablished)
    }

    @Test("a byte modified anywhere in any handshake flight makes the handshake fail closed")
    func tamperEveryFlight() {
        var rng = TestRNG(seed: 7)
        let clean = Pair().run()
        let clientFlights = clean.clientToServer.map(\.count)
        let serverFlights = clean.serverToClient.map(\.count)
        #expect(clientFlights.count == 2 && serverFlights.count == 2)  // CH, ClientAuth / SH, AuthResult
        var cases = 0
        for (direction, flights) in [(0, clientFlights), (1, serverFlights)] {
            for (index, size) in flights.enumerated() {
                var positions = Array(0..<16) + [size - 1]
                positions += (0..<40).map { _ in Int.random(in: 0..<size, using: &rng) }
                for pos in positions {
                    let bit = UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
                    let p = Pair()
                    let mutate: (Int, inout [UInt8]) -> Void = { n, bytes in if n == index { bytes[pos] ^= bit } }
                    if direction == 0 { p.mutateClientFlight = mutate } else { p.mutateServerFlight = mutate }
                    p.run()
                    #expect(!p.established, "flight \(direction)/\(index) byte \(pos) modified but handshake succeeded")
                    // Either side failed, or one is left waiting for bytes that never come: then EOF must fail it.
                    if p.clientError == nil && p.serverError == nil {
                        #expect(throws: QNSPError.truncatedInput("the handshake")) { try p.server.receiveEOF() }
                    }
                    cases += 1
                }
            }
        }
        #expect(cases > 200)
    }

    @Test("truncated handshake flights end in a truncation error at EOF")
    func truncated() {
        for cut in [1, 11, 12, 700, 768, 2000] {
            let client = QNSPConnection(client: .init(username: "alice", user: Keys.user, pinnedHostKey: Keys.host.publicKey))
            let server = QNSPConnection(server: .init(hostKeys: [Keys.host]) { _, _ in .accept })
            try? client.start()
            let hello = client.takeOutbound()
            #expect((try? server.receive(Array(hello.prefix(cut)))) != nil)
            #expect(!server.isEstablished)
            #expect(throws: QNSPError.truncatedInput("the handshake")) { try server.receiveEOF() }
        }
    }

    @Test("replayed handshake messages are refused")
    func replays() {
        // ClientAuth cells from one session replayed into another fail authentication.
        let first = Pair().run()
        let p = Pair()
        p.mutateClientFlight = { n, bytes in if n == 1 { bytes = first.clientToServer[1] } }
        p.run()
        #expect(p.serverError == .cellAuthenticationFailed(sequence: 0))
        #expect(!p.established)
        // A second client hello on the same connection is out of place.
        let client = QNSPConnection(client: .init(username: "alice", user: Keys.user, pinnedHostKey: Keys.host.publicKey))
        let server = QNSPConnection(server: .init(hostKeys: [Keys.host]) { _, _ in .accept })
        try? client.start()
        let hello = client.takeOutbound()
        #expect((try? server.receive(hello)) != nil)
        #expect(throws: QNSPError.self) { _ = try server.receive(hello) }
        #expect(server.isClosed)
    }

    @Test("clear-record framing errors are specific")
    func framing() throws {
        func server() -> QNSPConnection { QNSPConnection(server: .init(hostKeys: [Keys.host]) { _, _ in .accept }) }
        #expect(throws: QNSPError.badMagic) { _ = try server().receive(Array("SSH-2.0-OpenSSH_9.2\r\n".utf8)) }
        var big = ClearRecord(version: 1, type: .clientHello, cellSize: 768, body: []).encoded()
        big[8] = 0x7f  // body length 2 GiB
        #expect(throws: QNSPError.handshakeMessageTooLarge(0x7f00_0000)) { _ = try server().receive(big) }
        var odd = ClearRecord(version: 1, type: .clientHello, cellSize: 768, body: []).encoded()
        odd[6] = 0x03; odd[7] = 0x01  // 769
        #expect(throws: QNSPError.unsupportedCellSize(769)) { _ = try server().receive(odd) }
        var pad = ClearRecord(version: 1, type: .hostKeyRequest, cellSize: 768, body: [UInt8](repeating: 1, count: 33)).encoded()
        pad[767] = 1
        #expect(throws: QNSPError.nonZeroPadding) { _ = try server().receive(pad) }
        let unknownType = [UInt8]("QNSP".utf8) + [1, 99, 3, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 756)
        #expect(throws: QNSPError.unexpectedMessage("clear record type 99")) { _ = try server().receive(unknownType) }
    }

    @Test("unsupported version: the server answers with a reject listing its versions")
    func version() throws {
        let client = QNSPConnection(client: .init(username: "alice", user: Keys.user, pinnedHostKey: Keys.host.publicKey))
        try client.start()
        var hello = client.takeOutbound()
        hello[4] = 9
        let server = QNSPConnection(server: .init(hostKeys: [Keys.host]) { _, _ in .accept })
        #expect(throws: QNSPError.unsupportedVersion(offered: [9], supported: [1])) { _ = try server.receive(hello) }
        let reply = server.takeOutbound()
        #expect(reply.count == 768)
        #expect(throws: QNSPError.unsupportedVersion(offered: [1], supported: [1])) { _ = try client.receive(reply) }
    }
}

/// A tiny lock-protected box for values captured by @Sendable hooks in tests.
final class LockedBox<T>: @unchecked Sendable {
    private var stored: T
    private let lock = NSLockLite()
    init(_ v: T) { stored = v }
    var value: T { lock.with { stored } }
    func append<E>(_ e: E) where T == [E] { lock.with { stored.append(e) } }
}

/// pthread mutex wrapper (keeps the test target free of Foundation).
final class NSLockLite: @unchecked Sendable {
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    func with<R>(_ body: () -> R) -> R { pthread_mutex_lock(&m); defer { pthread_mutex_unlock(&m) }; return body() }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
