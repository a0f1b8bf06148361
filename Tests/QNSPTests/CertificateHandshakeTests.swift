import QNSP
import QNSPCrypto
import Synchronization
import Testing

@Suite("User certificates in the handshake")
struct CertificateHandshakeTests {
    static let ca: UserKeyPair = {
        do { return try UserKeyPair.generate(comment: "ca") } catch { preconditionFailure("\(error)") }
    }()

    static func certificate(for key: UserPublicKey) -> QNSPCertificate {
        do {
            return try QNSPCertificate.sign(
                subject: .user(key),
                serial: 9,
                keyID: "alice-cert",
                principals: ["alice"],
                validAfter: 0,
                validBefore: .max,
                options: [],
                ca: ca.signingKey
            )
        } catch { preconditionFailure("\(error)") }
    }

    @Test("the server's certificate policy sees the certificate the client presented; the key policy is not asked")
    func presented() {
        let seen = Mutex<QNSPCertificate?>(nil)
        let cert = Self.certificate(for: Keys.user.publicKey)
        let pair = Pair(authorized: [], certificate: cert) { user, key, certificate in
            seen.withLock { $0 = certificate }
            return user == "alice" && key == Keys.user.publicKey ? .accept : .reject("no")
        }.run()
        #expect(pair.clientError == nil)
        #expect(pair.serverError == nil)
        #expect(pair.server.isEstablished)
        #expect(seen.withLock { $0 } == cert)
    }

    @Test("a server without a certificate policy refuses certificates")
    func noPolicy() {
        let pair = Pair(certificate: Self.certificate(for: Keys.user.publicKey)).run()
        #expect(!pair.server.isEstablished)
        guard case .userNotAuthorized? = pair.serverError else {
            Issue.record("server error \(String(describing: pair.serverError))")
            return
        }
    }

    @Test("a certificate for another key fails the client's signature check")
    func otherKey() {
        let pair = Pair(certificate: Self.certificate(for: Keys.otherUser.publicKey)) { _, _, _ in .accept }.run()
        #expect(!pair.server.isEstablished)
        #expect(pair.serverError == .userSignatureInvalid)
    }
}
