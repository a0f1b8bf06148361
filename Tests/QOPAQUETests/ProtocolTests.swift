import Testing

@testable import QOPAQUE

/// Registration and login between QOPAQUE's own client and server: success, wrong passwords, unknown
/// users (fake records), tampering, and mismatched configurations.
@Suite("OPAQUE protocol")
struct ProtocolTests {
    static let password = Array("correct horse battery staple".utf8)

    @Test("register then log in: both sides get one session key, the client its export key again")
    func roundTrip() throws {
        let account = try LocalAccount.register(password: Self.password)
        let attempt = try account.login(password: Self.password)
        let client = try #require(attempt.client.value)
        let serverKey = try #require(attempt.server?.value)
        #expect(client.sessionKey.count == 64)
        #expect(client.sessionKey.constantTimeEquals(serverKey))
        #expect(client.exportKey.constantTimeEquals(account.exportKey))
        #expect(client.serverPublicKey == account.server.setup.publicKey)
    }

    @Test("the qpq default configuration (Argon2id m=64 MiB, t=3) registers and logs in", .timeLimit(.minutes(3)))
    func defaultConfiguration() throws {
        let account = try LocalAccount.register(password: Self.password, configuration: .qpqDefault)
        let attempt = try account.login(password: Self.password, configuration: .qpqDefault)
        let client = try #require(attempt.client.value)
        let serverKey = try #require(attempt.server?.value)
        #expect(client.sessionKey.constantTimeEquals(serverKey))
    }

    @Test("two logins give different session keys")
    func freshKeys() throws {
        let account = try LocalAccount.register(password: Self.password)
        let first = try #require(try account.login(password: Self.password).client.value)
        let second = try #require(try account.login(password: Self.password).client.value)
        #expect(!first.sessionKey.constantTimeEquals(second.sessionKey))
    }

    @Test("a wrong password is refused by the client with envelopeRecoveryFailed")
    func wrongPassword() throws {
        let account = try LocalAccount.register(password: Self.password)
        let attempt = try account.login(password: Array("correct horse battery stapler".utf8))
        #expect(attempt.client.failure == .envelopeRecoveryFailed)
        #expect(attempt.server == nil)
    }

    @Test("an unknown user gets a well-formed KE2 and the same client error as a wrong password")
    func unknownUser() throws {
        let account = try LocalAccount.register(password: Self.password)
        let attempt = try account.login(password: Self.password, unknownUser: true)
        #expect(attempt.client.failure == .envelopeRecoveryFailed)
    }

    @Test("the server refuses a KE3 it did not expect with clientAuthenticationFailed, for real and fake records")
    func serverRefusesForgedKE3() throws {
        let account = try LocalAccount.register(password: Self.password)
        for unknown in [false, true] {
            let client = try OPAQUEClientLogin(password: Self.password, configuration: .fastArgon2id)
            var (login, _) = try account.server.startLogin(
                ke1: client.ke1,
                record: unknown ? nil : account.record,
                credentialIdentifier: account.identifier
            )
            let forged = try KE3(bytes: [UInt8](repeating: 0x5a, count: 64))
            #expect(throws: OPAQUEError.clientAuthenticationFailed) { try login.finish(ke3: forged) }
        }
    }

    @Test("a KE3 replayed into another login is refused")
    func replayedKE3() throws {
        let account = try LocalAccount.register(password: Self.password)
        let first = try #require(try account.login(password: Self.password).client.value)
        let client = try OPAQUEClientLogin(password: Self.password, configuration: .fastArgon2id)
        var (login, _) = try account.server.startLogin(
            ke1: client.ke1,
            record: account.record,
            credentialIdentifier: account.identifier
        )
        #expect(throws: OPAQUEError.clientAuthenticationFailed) { try login.finish(ke3: first.ke3) }
    }

    @Test("the fake record is a function of the server's seed and the identifier only")
    func fakeRecordIsStable() throws {
        let server = try OPAQUEServer(setup: .generate(), configuration: .fastArgon2id)
        let bob = Array("bob".utf8)
        let first = try server.fakeRecord(credentialIdentifier: bob)
        let again = try server.fakeRecord(credentialIdentifier: bob)
        let carol = try server.fakeRecord(credentialIdentifier: Array("carol".utf8))
        let otherServer = try OPAQUEServer(setup: .generate(), configuration: .fastArgon2id)
        let elsewhere = try otherServer.fakeRecord(credentialIdentifier: bob)
        #expect(first == again)
        #expect(first != carol)
        #expect(first != elsewhere)
        #expect(first.envelope == .zero)
        #expect(try RegistrationRecord(bytes: first.bytes) == first)
    }

    @Test("for one blinded element, a real and a fake account answer like accounts: stable evaluations")
    func fakeResponsesLookReal() throws {
        let account = try LocalAccount.register(password: Self.password)
        let client = try OPAQUEClientLogin(password: Self.password, configuration: .fastArgon2id)
        let unknown = Array("nobody".utf8)
        let (_, fake1) = try account.server.startLogin(ke1: client.ke1, record: nil, credentialIdentifier: unknown)
        let (_, fake2) = try account.server.startLogin(ke1: client.ke1, record: nil, credentialIdentifier: unknown)
        let (_, real1) = try account.server.startLogin(
            ke1: client.ke1,
            record: account.record,
            credentialIdentifier: account.identifier
        )
        let (_, real2) = try account.server.startLogin(
            ke1: client.ke1,
            record: account.record,
            credentialIdentifier: account.identifier
        )
        // The OPRF evaluation is deterministic per identifier for both kinds of account...
        #expect(fake1.credentialResponse.evaluatedMessage == fake2.credentialResponse.evaluatedMessage)
        #expect(real1.credentialResponse.evaluatedMessage == real2.credentialResponse.evaluatedMessage)
        // ...and everything else is fresh each time for both.
        #expect(fake1.credentialResponse.maskedResponse != fake2.credentialResponse.maskedResponse)
        #expect(real1.credentialResponse.maskedResponse != real2.credentialResponse.maskedResponse)
        #expect(fake1.bytes.count == real1.bytes.count)
    }

    @Test("every byte of KE2 is covered: a flip anywhere makes the client refuse")
    func tamperedKE2() throws {
        let account = try LocalAccount.register(password: Self.password)
        var outcomes: [String: Int] = [:]
        for index in 0..<KE2.size {
            let attempt = try account.login(password: Self.password) { bytes in
                bytes[index] ^= 0x01
            }
            let error = try #require(attempt.client.failure, "flip at byte \(index) was accepted")
            outcomes["\(error)", default: 0] += 1
        }
        #expect(outcomes.values.reduce(0, +) == KE2.size)
    }

    @Test("a tampered KE1 leads the client to refuse the server's MAC")
    func tamperedKE1() throws {
        let account = try LocalAccount.register(password: Self.password)
        var client = try OPAQUEClientLogin(password: Self.password, configuration: .fastArgon2id)
        var bytes = client.ke1.bytes
        bytes[40] ^= 0x80  // inside client_nonce
        let (_, ke2) = try account.server.startLogin(
            ke1: KE1(bytes: bytes),
            record: account.record,
            credentialIdentifier: account.identifier
        )
        #expect(throws: OPAQUEError.serverAuthenticationFailed) { try client.finish(ke2: ke2) }
    }

    @Test("client and server with different contexts cannot complete a login")
    func contextMismatch() throws {
        let clientConfiguration = try OPAQUEConfiguration(
            context: Array("app A".utf8),
            keyStretching: OPAQUEConfiguration.fastArgon2id.keyStretching
        )
        let serverConfiguration = try OPAQUEConfiguration(
            context: Array("app B".utf8),
            keyStretching: OPAQUEConfiguration.fastArgon2id.keyStretching
        )
        let server = try OPAQUEServer(setup: .generate(), configuration: serverConfiguration)
        let account = try LocalAccount.register(
            password: Self.password,
            configuration: clientConfiguration,
            server: server
        )
        let attempt = try account.login(password: Self.password, configuration: clientConfiguration)
        #expect(attempt.client.failure == .serverAuthenticationFailed)
    }

    @Test("logging in with other Argon2id costs than at registration fails like a wrong password")
    func ksfMismatch() throws {
        let account = try LocalAccount.register(password: Self.password)
        let other = try OPAQUEConfiguration(
            context: OPAQUEConfiguration.fastArgon2id.context,
            keyStretching: .argon2id(Argon2idParameters(memoryKiB: 512, iterations: 1))
        )
        let attempt = try account.login(password: Self.password, configuration: other)
        #expect(attempt.client.failure == .envelopeRecoveryFailed)
    }

    @Test("identities are bound into the envelope: a different server identity at login is refused")
    func identityBinding() throws {
        let configuration = OPAQUEConfiguration.fastArgon2id
        let server = try OPAQUEServer(setup: .generate(), configuration: configuration)
        let identifier = Array("alice".utf8)
        var registration = try OPAQUEClientRegistration(password: Self.password, configuration: configuration)
        let response = try server.registrationResponse(to: registration.request, credentialIdentifier: identifier)
        let registered = try registration.finish(
            response: response,
            serverIdentity: Array("example.org".utf8),
            clientIdentity: identifier
        )
        var login = try OPAQUEClientLogin(password: Self.password, configuration: configuration)
        let (_, ke2) = try server.startLogin(
            ke1: login.ke1,
            record: registered.record,
            credentialIdentifier: identifier,
            serverIdentity: Array("evil.example".utf8),
            clientIdentity: identifier
        )
        #expect(throws: OPAQUEError.envelopeRecoveryFailed) {
            try login.finish(ke2: ke2, serverIdentity: Array("evil.example".utf8), clientIdentity: identifier)
        }
    }

    @Test("matching explicit identities log in")
    func explicitIdentities() throws {
        let configuration = OPAQUEConfiguration.fastArgon2id
        let server = try OPAQUEServer(setup: .generate(), configuration: configuration)
        let identifier = Array("alice".utf8)
        let serverIdentity = Array("example.org".utf8)
        var registration = try OPAQUEClientRegistration(password: Self.password, configuration: configuration)
        let response = try server.registrationResponse(to: registration.request, credentialIdentifier: identifier)
        let registered = try registration.finish(
            response: response,
            serverIdentity: serverIdentity,
            clientIdentity: identifier
        )
        var login = try OPAQUEClientLogin(password: Self.password, configuration: configuration)
        var (serverLogin, ke2) = try server.startLogin(
            ke1: login.ke1,
            record: registered.record,
            credentialIdentifier: identifier,
            serverIdentity: serverIdentity,
            clientIdentity: identifier
        )
        let finished = try login.finish(ke2: ke2, serverIdentity: serverIdentity, clientIdentity: identifier)
        let serverKey = try serverLogin.finish(ke3: finished.ke3)
        #expect(finished.sessionKey.constantTimeEquals(serverKey))
    }

    @Test("an empty password works; a password over 65535 bytes is refused")
    func passwordLengths() throws {
        let account = try LocalAccount.register(password: [])
        let attempt = try account.login(password: [])
        #expect(attempt.server?.value != nil)
        #expect(throws: OPAQUEError.passwordTooLong(65536)) {
            _ = try OPAQUEClientLogin(password: [UInt8](repeating: 1, count: 65536), configuration: .fastArgon2id)
        }
    }

    @Test("Argon2id parameters outside libsodium's range are refused", arguments: [(UInt32(7), UInt32(1)), (8, 0)])
    func argon2Bounds(memoryKiB: UInt32, iterations: UInt32) {
        #expect(throws: OPAQUEError.self) { _ = try Argon2idParameters(memoryKiB: memoryKiB, iterations: iterations) }
    }

    @Test("the server setup survives serialization; malformed setups are refused")
    func serverSetupSerialization() throws {
        let setup = try OPAQUEServerSetup.generate()
        let bytes = setup.serialized.copiedBytes()
        #expect(bytes.count == OPAQUEServerSetup.serializedSize)
        let again = try OPAQUEServerSetup(serialized: bytes)
        #expect(again.publicKey == setup.publicKey)
        #expect(again.oprfSeed.constantTimeEquals(setup.oprfSeed))
        #expect(again.fakeRecordSeed.constantTimeEquals(setup.fakeRecordSeed))
        var badVersion = bytes
        badVersion[0] = 2
        var badScalar = bytes
        for index in 65..<97 {
            badScalar[index] = 0xff
        }
        for bad in [Array(bytes.dropLast()), bytes + [0], badVersion, badScalar] {
            #expect(throws: OPAQUEError.self) { _ = try OPAQUEServerSetup(serialized: bad) }
        }
    }

    @Test("a login through a restored setup works: the record does not depend on process state")
    func restoredSetup() throws {
        let account = try LocalAccount.register(password: Self.password)
        let restored = OPAQUEServer(
            setup: try OPAQUEServerSetup(serialized: account.server.setup.serialized.copiedBytes()),
            configuration: .fastArgon2id
        )
        let again = LocalAccount(
            server: restored,
            identifier: account.identifier,
            record: account.record,
            exportKey: account.exportKey
        )
        let attempt = try again.login(password: Self.password)
        #expect(attempt.server?.value != nil)
    }
}
