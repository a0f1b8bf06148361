import QNSPCrypto
import QSSHTestSupport
import Testing

@Suite("QNSP certificates")
struct CertificateTests {
    static let ca: UserKeyPair = {
        do { return try UserKeyPair.generate(comment: "ca") } catch { preconditionFailure("\(error)") }
    }()
    static let otherCA: UserKeyPair = {
        do { return try UserKeyPair.generate(comment: "other ca") } catch { preconditionFailure("\(error)") }
    }()
    static let user: UserKeyPair = {
        do { return try UserKeyPair.generate(comment: "alice") } catch { preconditionFailure("\(error)") }
    }()
    static let cert: QNSPCertificate = {
        do {
            return try QNSPCertificate.sign(
                subject: .user(user.publicKey),
                serial: 42,
                keyID: "alice@corp",
                principals: ["alice", "admin"],
                validAfter: 1_000,
                validBefore: 2_000,
                options: [.init(name: "no-pty"), .init(name: "force-command", value: "uptime")],
                ca: ca.signingKey
            )
        } catch { preconditionFailure("\(error)") }
    }()

    var trusted: [SignatureScheme.PublicKey] { [Self.ca.signingKey.publicKey] }

    @Test("a signed certificate round-trips byte for byte and verifies inside its window for its principals")
    func valid() throws {
        let decoded = try QNSPCertificate(blob: Self.cert.blob)
        #expect(decoded == Self.cert)
        #expect(decoded.blob == Self.cert.blob)
        #expect(decoded.options.map(\.name) == ["force-command", "no-pty"])
        #expect(try QNSPCertificate(line: Self.cert.line(comment: "c")) == Self.cert)
        for principal in ["alice", "admin"] {
            #expect(throws: Never.self) {
                try decoded.verify(trustedCAs: trusted, kind: .user, principal: principal, now: 1_000)
            }
        }
        #expect(throws: Never.self) {
            try decoded.verify(trustedCAs: trusted, kind: .user, principal: "alice", now: 1_999)
        }
    }

    @Test("refusals: expired, not yet valid, wrong principal, other CA, wrong kind")
    func refusals() {
        let c = Self.cert
        #expect(throws: QNSPCertificate.Refusal.expired(validBefore: 2_000)) {
            try c.verify(trustedCAs: trusted, kind: .user, principal: "alice", now: 2_000)
        }
        #expect(throws: QNSPCertificate.Refusal.notYetValid(validAfter: 1_000)) {
            try c.verify(trustedCAs: trusted, kind: .user, principal: "alice", now: 999)
        }
        #expect(throws: QNSPCertificate.Refusal.wrongPrincipal("bob")) {
            try c.verify(trustedCAs: trusted, kind: .user, principal: "bob", now: 1_500)
        }
        #expect(throws: QNSPCertificate.Refusal.self) {
            try c.verify(trustedCAs: [Self.otherCA.signingKey.publicKey], kind: .user, principal: "alice", now: 1_500)
        }
        #expect(throws: QNSPCertificate.Refusal.wrongKind) {
            try c.verify(trustedCAs: trusted, kind: .host, principal: "alice", now: 1_500)
        }
        // Re-signed by another CA but claiming the trusted one: the signature fails.
        var forged = c
        forged.serial = 43
        #expect(throws: QNSPCertificate.Refusal.badSignature) {
            try forged.verify(trustedCAs: trusted, kind: .user, principal: "alice", now: 1_500)
        }
    }

    @Test("every byte of a certificate flipped in turn: never accepted")
    func tampered() {
        let blob = Self.cert.blob
        var decodedButRefused = 0
        for i in blob.indices {
            var b = blob
            b[i] ^= 0x01
            guard let c = try? QNSPCertificate(blob: b) else { continue }
            do {
                try c.verify(trustedCAs: trusted, kind: .user, principal: "alice", now: 1_500)
                Issue.record("byte \(i) flipped and the certificate still verified")
            } catch {
                decodedButRefused += 1
            }
        }
        // Most flips keep the encoding valid: they must be caught by the signature.
        #expect(decodedButRefused > blob.count / 2)
    }

    @Test("field rules: principals, window, options (unknown, unsorted, repeated, values)")
    func fieldRules() {
        func sign(
            principals: [String] = ["a"],
            after: UInt64 = 0,
            before: UInt64 = 10,
            options: [QNSPCertificate.Option] = []
        ) throws {
            _ = try QNSPCertificate.sign(
                subject: .user(Self.user.publicKey),
                serial: 1,
                keyID: "k",
                principals: principals,
                validAfter: after,
                validBefore: before,
                options: options,
                ca: Self.ca.signingKey
            )
        }
        #expect(throws: QNSPCryptoError.self) { try sign(principals: []) }
        #expect(throws: QNSPCryptoError.self) { try sign(principals: ["a,b"]) }
        #expect(throws: QNSPCryptoError.self) { try sign(after: 10, before: 10) }
        #expect(throws: QNSPCryptoError.self) { try sign(options: [.init(name: "permit-everything")]) }
        #expect(throws: QNSPCryptoError.self) { try sign(options: [.init(name: "no-pty", value: "x")]) }
        #expect(throws: QNSPCryptoError.self) { try sign(options: [.init(name: "force-command")]) }
        #expect(throws: QNSPCryptoError.self) { try sign(options: [.init(name: "no-pty"), .init(name: "no-pty")]) }
        #expect(throws: Never.self) { try sign(options: [.init(name: "source-address", value: "10.0.0.0/8")]) }
    }

    @Test("random mutations of a certificate never crash the decoder", arguments: [UInt64(1), 2])
    func fuzz(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let blob = Self.cert.blob
        for _ in 0..<2000 {
            var b = blob
            switch rng.next() % 4 {
            case 0: b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next())
            case 1: b.removeLast(Int(rng.next() % UInt64(b.count)))
            case 2:
                let at = Int(rng.next() % UInt64(b.count - 2))
                b[at] = 0xff
                b[at + 1] = 0xff
            default: b += [UInt8(truncatingIfNeeded: rng.next())]
            }
            if let c = try? QNSPCertificate(blob: b) {
                #expect(c.blob == b)
            }
        }
    }
}
