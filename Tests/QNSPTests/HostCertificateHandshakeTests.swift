import QNSP
import QNSPCrypto
import Testing

/// First contact with a host certificate in the announcement (docs/protocol.md §7.11).
@Suite("Host certificates in the handshake")
struct HostCertificateHandshakeTests {
    static let ca: UserKeyPair = try! UserKeyPair.generate(comment: "host CA")

    static func certificate(for key: HostPublicKey = Keys.host.publicKey, principals: [String] = ["db.example.com"]) throws -> QNSPCertificate {
        try QNSPCertificate.sign(
            subject: .host(key), serial: 7, keyID: "db host", principals: principals, validAfter: 0, validBefore: .max,
            options: [], ca: ca.signingKey)
    }

    @Test("a client that asks gets the certificate; the hook decides instead of the trust prompt; the handshake completes")
    func certificateDelivered() throws {
        let certificate = try Self.certificate()
        let seen = LockedBox<[QNSPCertificate?]>([])
        let prompted = LockedBox<[Int]>([])
        let p = Pair(
            pinned: .some(nil), trust: { _ in prompted.append(1); return true },
            hostCertificate: certificate, verifyHostCertificate: { _, cert in seen.append(cert); return true }
        ).run()
        #expect(p.established)
        #expect(seen.value == [certificate])
        #expect(prompted.value.isEmpty)
        // The request paid for the larger answer: at most 3x amplification.
        let request = p.clientToServer[0].count, announcement = p.serverToClient[0].count
        #expect(announcement <= 3 * request, "request \(request), announcement \(announcement)")
        #expect(request >= HandshakeMessages.HostKeyRequest.minimumRecordSizeForCertificate(cellSize: 768))
    }

    @Test("a client that does not ask gets no certificate and an unpadded request still works (older clients)")
    func certificateNotAsked() throws {
        let p = Pair(pinned: .some(nil), trust: { _ in true }, hostCertificate: try Self.certificate()).run()
        #expect(p.established)
        let parsed = try ClearRecord.parse(p.serverToClient[0][...], expectedCellSize: 768, maxBodySize: 16384)
        let announcement = try #require(parsed).0
        #expect(try HandshakeMessages.HostKeyAnnouncement(decoding: announcement.body).certificate == nil)
        #expect(p.serverToClient[0].count <= 3 * p.clientToServer[0].count)
    }

    @Test("a server without a certificate: the hook sees nil and its refusal fails closed before any secret is sent")
    func noCertificate() {
        let seen = LockedBox<[QNSPCertificate?]>([])
        let p = Pair(pinned: .some(nil), verifyHostCertificate: { _, cert in seen.append(cert); return false }).run()
        #expect(seen.value == [nil])
        #expect(p.clientError == .hostKeyNotTrusted(fingerprint: Keys.host.publicKey.fingerprint))
        #expect(p.clientToServer.count == 1)
    }

    @Test("a certificate of another key in the announcement is refused by the connection, before the hook")
    func certificateOfAnotherKey() throws {
        let other = try Self.certificate(for: Keys.otherHost.publicKey)
        let called = LockedBox<[Int]>([])
        let p = Pair(pinned: .some(nil), hostCertificate: other, verifyHostCertificate: { _, _ in called.append(1); return true }).run()
        guard case .malformedHandshake(let why)? = p.clientError else {
            Issue.record("expected malformedHandshake, got \(String(describing: p.clientError))")
            return
        }
        #expect(why.contains("not for the announced host key"))
        #expect(called.value.isEmpty)
    }

    @Test("announcement codec: with and without certificate round-trip; an empty certificate or trailing bytes are refused")
    func codec() throws {
        let bare = HandshakeMessages.HostKeyAnnouncement(hostKeyBlob: [1, 2, 3], signature: [4, 5])
        #expect(try HandshakeMessages.HostKeyAnnouncement(decoding: bare.encoded()) == bare)
        let with = HandshakeMessages.HostKeyAnnouncement(hostKeyBlob: [1, 2, 3], signature: [4, 5], certificate: [9, 9])
        #expect(try HandshakeMessages.HostKeyAnnouncement(decoding: with.encoded()) == with)
        #expect(throws: QNSPError.self) { try HandshakeMessages.HostKeyAnnouncement(decoding: bare.encoded() + [0, 0]) }
        #expect(throws: QNSPError.self) { try HandshakeMessages.HostKeyAnnouncement(decoding: with.encoded() + [1]) }
        #expect(throws: QNSPError.self) { try HandshakeMessages.HostKeyAnnouncement(decoding: with.encoded().dropLast()) }
        #expect(HandshakeMessages.HostKeyAnnouncement.maxCertificateSize > 9000)
        #expect(try Self.certificate().blob.count < HandshakeMessages.HostKeyAnnouncement.maxCertificateSize)
    }
}
