import QSSHTestSupport
import Testing

@testable import QOPAQUE

/// Registration and login across implementations: QOPAQUE against opaque-ke 4.0.1 (Rust, through PyPI
/// opaque-ke-py 0.1.0, scripts/opaque_ke_peer.py), both directions. opaque-ke-py's suite is fixed at
/// ristretto255-SHA512 with `Argon2::default()` (Argon2id m=19 MiB, t=2, p=1), empty context and no
/// explicit identities: ``OPAQUEConfiguration/opaqueKeDefault`` is that configuration.
@Suite("OPAQUE interop with opaque-ke", .serialized, .timeLimit(.minutes(2)))
struct InteropTests {
    static let configuration = OPAQUEConfiguration.opaqueKeDefault
    static let password = Array("correct horse battery staple".utf8)
    static let username = Array("alice@example.org".utf8)

    // MARK: - Swift client, opaque-ke server

    /// Registers through the Python server; returns its password file.
    static func registerWithPythonServer(
        _ peer: OpaqueKePeer,
        password: [UInt8]
    ) throws -> (file: [UInt8], exportKey: SecretBytes) {
        var registration = try OPAQUEClientRegistration(password: password, configuration: configuration)
        let response = try peer.bytes(
            "server_registration_start",
            ["request": registration.request.bytes, "username": username]
        )
        let result = try registration.finish(response: RegistrationResponse(bytes: response["response"] ?? []))
        let stored = try peer.bytes("server_registration_finish", ["upload": result.record.bytes])
        return (stored["password_file"] ?? [], result.exportKey)
    }

    @Test("Swift client registers and logs in at an opaque-ke server; both derive one session key")
    func swiftClientPythonServer() throws {
        let peer = try OpaqueKePeer()
        _ = try peer.call(["op": "server_setup"])
        let (file, exportKey) = try Self.registerWithPythonServer(peer, password: Self.password)
        // opaque-ke's password file is the RegistrationRecord itself.
        #expect(file.count == RegistrationRecord.size)

        var login = try OPAQUEClientLogin(password: Self.password, configuration: Self.configuration)
        let started = try peer.bytes(
            "server_login_start",
            ["password_file": file, "ke1": login.ke1.bytes, "username": Self.username]
        )
        let finished = try login.finish(ke2: KE2(bytes: started["ke2"] ?? []))
        let serverDone = try peer.bytes(
            "server_login_finish",
            ["state": started["state"] ?? [], "ke3": finished.ke3.bytes]
        )
        #expect(finished.sessionKey.constantTimeEquals(serverDone["session_key"] ?? []))
        #expect(finished.exportKey.constantTimeEquals(exportKey))
    }

    @Test("Swift client with a wrong password is refused at the envelope; opaque-ke refuses a forged KE3")
    func swiftClientWrongPassword() throws {
        let peer = try OpaqueKePeer()
        _ = try peer.call(["op": "server_setup"])
        let (file, _) = try Self.registerWithPythonServer(peer, password: Self.password)
        var login = try OPAQUEClientLogin(password: Array("Tr0ub4dor&3".utf8), configuration: Self.configuration)
        let started = try peer.bytes(
            "server_login_start",
            ["password_file": file, "ke1": login.ke1.bytes, "username": Self.username]
        )
        #expect(throws: OPAQUEError.envelopeRecoveryFailed) { try login.finish(ke2: KE2(bytes: started["ke2"] ?? [])) }
        // The client gives up there; a KE3 guessed in its place is refused by opaque-ke.
        #expect(throws: OpaqueKePeer.PeerError.self) {
            try peer.bytes(
                "server_login_finish",
                ["state": started["state"] ?? [], "ke3": [UInt8](repeating: 1, count: 64)]
            )
        }
    }

    @Test("Swift client with other Argon2id costs (the qpq default) cannot log in at opaque-ke")
    func argon2ParametersMatter() throws {
        let peer = try OpaqueKePeer()
        _ = try peer.call(["op": "server_setup"])
        let (file, _) = try Self.registerWithPythonServer(peer, password: Self.password)
        let other = try OPAQUEConfiguration(context: [], keyStretching: .argon2id(.qpqDefault))
        var login = try OPAQUEClientLogin(password: Self.password, configuration: other)
        let started = try peer.bytes(
            "server_login_start",
            ["password_file": file, "ke1": login.ke1.bytes, "username": Self.username]
        )
        #expect(throws: OPAQUEError.envelopeRecoveryFailed) { try login.finish(ke2: KE2(bytes: started["ke2"] ?? [])) }
    }

    // MARK: - opaque-ke client, Swift server

    /// Registers the Python client at our server; returns the stored record and the client's export key.
    static func registerPythonClient(
        _ peer: OpaqueKePeer,
        server: OPAQUEServer,
        password: [UInt8]
    ) throws -> (record: RegistrationRecord, exportKey: [UInt8]) {
        let started = try peer.bytes("client_registration_start", ["password": password])
        let response = try server.registrationResponse(
            to: RegistrationRequest(bytes: started["request"] ?? []),
            credentialIdentifier: username
        )
        let finished = try peer.bytes(
            "client_registration_finish",
            ["password": password, "state": started["state"] ?? [], "response": response.bytes]
        )
        return (try RegistrationRecord(bytes: finished["upload"] ?? []), finished["export_key"] ?? [])
    }

    @Test("opaque-ke client registers and logs in at a Swift server; both derive one session key")
    func pythonClientSwiftServer() throws {
        let peer = try OpaqueKePeer()
        let server = try OPAQUEServer(setup: .generate(), configuration: Self.configuration)
        let (record, exportKey) = try Self.registerPythonClient(peer, server: server, password: Self.password)

        let started = try peer.bytes("client_login_start", ["password": Self.password])
        var (serverLogin, ke2) = try server.startLogin(
            ke1: KE1(bytes: started["ke1"] ?? []),
            record: record,
            credentialIdentifier: Self.username
        )
        let finished = try peer.bytes(
            "client_login_finish",
            ["password": Self.password, "state": started["state"] ?? [], "ke2": ke2.bytes]
        )
        let sessionKey = try serverLogin.finish(ke3: KE3(bytes: finished["ke3"] ?? []))
        #expect(sessionKey.constantTimeEquals(finished["session_key"] ?? []))
        #expect(finished["export_key"] == exportKey)
    }

    @Test("opaque-ke client with a wrong password is refused; the Swift server refuses a forged KE3")
    func pythonClientWrongPassword() throws {
        let peer = try OpaqueKePeer()
        let server = try OPAQUEServer(setup: .generate(), configuration: Self.configuration)
        let (record, _) = try Self.registerPythonClient(peer, server: server, password: Self.password)
        let wrong = Array("Tr0ub4dor&3".utf8)
        let started = try peer.bytes("client_login_start", ["password": wrong])
        var (serverLogin, ke2) = try server.startLogin(
            ke1: KE1(bytes: started["ke1"] ?? []),
            record: record,
            credentialIdentifier: Self.username
        )
        #expect(throws: OpaqueKePeer.PeerError.self) {
            try peer.bytes(
                "client_login_finish",
                ["password": wrong, "state": started["state"] ?? [], "ke2": ke2.bytes]
            )
        }
        #expect(throws: OPAQUEError.clientAuthenticationFailed) {
            try serverLogin.finish(ke3: KE3(bytes: [UInt8](repeating: 1, count: 64)))
        }
    }

    @Test("opaque-ke client logging in as an unknown user gets our fake record and is refused like a wrong password")
    func pythonClientUnknownUser() throws {
        let peer = try OpaqueKePeer()
        let server = try OPAQUEServer(setup: .generate(), configuration: Self.configuration)
        let started = try peer.bytes("client_login_start", ["password": Self.password])
        let (_, ke2) = try server.startLogin(
            ke1: KE1(bytes: started["ke1"] ?? []),
            record: nil,
            credentialIdentifier: Array("nobody".utf8)
        )
        let error = #expect(throws: OpaqueKePeer.PeerError.self) {
            try peer.bytes(
                "client_login_finish",
                ["password": Self.password, "state": started["state"] ?? [], "ke2": ke2.bytes]
            )
        }
        // opaque-ke reports an unknown user exactly as it reports a wrong password.
        #expect(error?.description.contains("InvalidLoginError") == true)
    }
}
