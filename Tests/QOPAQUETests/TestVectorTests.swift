import Foundation
import Testing

@testable import QOPAQUE

/// RFC 9807 Appendix C: every ristretto255 vector of the specification's vectors.json, real and fake,
/// with every input injected (blinds, nonces, seeds) and every listed intermediate and output compared.
@Suite("OPAQUE test vectors")
struct TestVectorTests {
    /// Runs one real vector end to end and returns the names of the values that differed.
    static func runReal(_ vector: OPAQUEVector) throws -> [String] {
        var mismatches: [String] = []
        func check(_ name: String, _ actual: some ContiguousBytes, _ expected: [UInt8]) {
            let bytes = actual.withUnsafeBytes { Array($0) }
            if expected.isEmpty || bytes != expected {
                mismatches.append(name)
            }
        }
        let configuration = OPAQUEConfiguration.testVectors(context: Hex.decode(vector.config["Context"] ?? ""))
        let serverIdentity = vector.optionalInput("server_identity")
        let clientIdentity = vector.optionalInput("client_identity")
        let credentialIdentifier = vector.input("credential_identifier")
        let password = vector.input("password")

        let keyPair = try DiffieHellmanKeyPair(
            privateKey: Ristretto255Scalar(canonical: vector.input("server_private_key"))
        )
        check("server_public_key", keyPair.publicKey.bytes, vector.input("server_public_key"))
        let setup = try OPAQUEServerSetup(
            oprfSeed: SecretBytes(copying: vector.input("oprf_seed")),
            keyPair: keyPair,
            fakeRecordSeed: SecretBytes.random(count: 64)
        )
        let server = OPAQUEServer(setup: setup, configuration: configuration)

        // Registration
        var registration = try OPAQUEClientRegistration(
            password: password,
            configuration: configuration,
            blind: Ristretto255Scalar(canonical: vector.input("blind_registration"))
        )
        check("registration_request", registration.request.bytes, vector.output("registration_request"))
        let request = try RegistrationRequest(bytes: registration.request.bytes)
        let response = try server.registrationResponse(to: request, credentialIdentifier: credentialIdentifier)
        check("registration_response", response.bytes, vector.output("registration_response"))
        let registrationTrace = OPAQUETrace()
        let registered = try registration.finish(
            response: RegistrationResponse(bytes: response.bytes),
            serverIdentity: serverIdentity,
            clientIdentity: clientIdentity,
            envelopeNonce: vector.input("envelope_nonce"),
            trace: registrationTrace
        )
        check("registration_upload", registered.record.bytes, vector.output("registration_upload"))
        check("export_key (registration)", registered.exportKey, vector.output("export_key"))
        for name in ["randomized_password", "auth_key", "masking_key", "client_public_key", "envelope"] {
            check(name + " (registration)", registrationTrace[name] ?? [], vector.intermediate(name))
        }
        let record = try RegistrationRecord(bytes: registered.record.bytes)

        // Login
        var login = try OPAQUEClientLogin(
            password: password,
            configuration: configuration,
            blind: Ristretto255Scalar(canonical: vector.input("blind_login")),
            clientNonce: vector.input("client_nonce"),
            keyshareSeed: SecretBytes(copying: vector.input("client_keyshare_seed"))
        )
        check("KE1", login.ke1.bytes, vector.output("KE1"))
        let serverTrace = OPAQUETrace()
        var (serverLogin, ke2) = try server.generateKE2(
            ke1: KE1(bytes: login.ke1.bytes),
            record: record,
            isFake: false,
            credentialIdentifier: credentialIdentifier,
            serverIdentity: serverIdentity,
            clientIdentity: clientIdentity,
            maskingNonce: vector.input("masking_nonce"),
            serverNonce: vector.input("server_nonce"),
            keyshareSeed: SecretBytes(copying: vector.input("server_keyshare_seed")),
            trace: serverTrace
        )
        check("KE2", ke2.bytes, vector.output("KE2"))
        for name in ["oprf_key", "handshake_secret", "server_mac_key", "client_mac_key"] {
            check(name + " (server)", serverTrace[name] ?? [], vector.intermediate(name))
        }
        let clientTrace = OPAQUETrace()
        let finished = try login.finish(
            ke2: KE2(bytes: ke2.bytes),
            serverIdentity: serverIdentity,
            clientIdentity: clientIdentity,
            trace: clientTrace
        )
        check("KE3", finished.ke3.bytes, vector.output("KE3"))
        check("session_key (client)", finished.sessionKey, vector.output("session_key"))
        check("export_key (login)", finished.exportKey, vector.output("export_key"))
        for name in ["randomized_password", "masking_key", "handshake_secret", "server_mac_key", "client_mac_key"] {
            check(name + " (login)", clientTrace[name] ?? [], vector.intermediate(name))
        }
        let serverSessionKey = try serverLogin.finish(ke3: KE3(bytes: finished.ke3.bytes))
        check("session_key (server)", serverSessionKey, vector.output("session_key"))
        return mismatches
    }

    /// Runs one fake vector (an unknown user's KE2 from the given fake record) and returns mismatches.
    static func runFake(_ vector: OPAQUEVector) throws -> [String] {
        var mismatches: [String] = []
        let configuration = OPAQUEConfiguration.testVectors(context: Hex.decode(vector.config["Context"] ?? ""))
        let keyPair = try DiffieHellmanKeyPair(
            privateKey: Ristretto255Scalar(canonical: vector.input("server_private_key"))
        )
        if keyPair.publicKey.bytes != vector.input("server_public_key") {
            mismatches.append("server_public_key")
        }
        let clientKeys = try DiffieHellmanKeyPair(
            privateKey: Ristretto255Scalar(canonical: vector.input("client_private_key"))
        )
        if clientKeys.publicKey.bytes != vector.input("client_public_key") {
            mismatches.append("client_public_key")
        }
        let setup = try OPAQUEServerSetup(
            oprfSeed: SecretBytes(copying: vector.input("oprf_seed")),
            keyPair: keyPair,
            fakeRecordSeed: SecretBytes.random(count: 64)
        )
        let server = OPAQUEServer(setup: setup, configuration: configuration)
        let fakeRecord = RegistrationRecord(
            clientPublicKey: try Ristretto255Element(
                validating: vector.input("client_public_key"),
                field: .clientPublicKey
            ),
            maskingKey: vector.input("masking_key"),
            envelope: .zero
        )
        var (login, ke2) = try server.generateKE2(
            ke1: KE1(bytes: vector.input("KE1")),
            record: fakeRecord,
            isFake: true,
            credentialIdentifier: vector.input("credential_identifier"),
            serverIdentity: vector.optionalInput("server_identity"),
            clientIdentity: vector.optionalInput("client_identity"),
            maskingNonce: vector.input("masking_nonce"),
            serverNonce: vector.input("server_nonce"),
            keyshareSeed: SecretBytes(copying: vector.input("server_keyshare_seed")),
            trace: nil
        )
        if ke2.bytes != vector.output("KE2") {
            mismatches.append("KE2")
        }
        do {
            _ = try login.finish(ke3: KE3(clientMAC: [UInt8](repeating: 0, count: 64)))
            mismatches.append("fake login accepted a KE3")
        } catch {
            if error != .clientAuthenticationFailed {
                mismatches.append("fake login error \(error)")
            }
        }
        return mismatches
    }

    @Test("the vectors file is the nine-configuration file the README describes")
    func inventory() {
        #expect(OPAQUEVector.all.count == 9)
        #expect(OPAQUEVector.ristrettoReal.count == 2)
        #expect(OPAQUEVector.ristrettoFake.count == 1)
    }

    @Test("real ristretto255 vector: registration, login and every intermediate", arguments: OPAQUEVector.ristrettoReal)
    func real(_ vector: OPAQUEVector) throws {
        let mismatches = try Self.runReal(vector)
        #expect(mismatches.isEmpty, "differs: \(mismatches)")
    }

    @Test("fake ristretto255 vector: KE2 for an unknown user", arguments: OPAQUEVector.ristrettoFake)
    func fake(_ vector: OPAQUEVector) throws {
        let mismatches = try Self.runFake(vector)
        #expect(mismatches.isEmpty, "differs: \(mismatches)")
    }

    @Test("per-configuration count: ristretto255 passes, curve25519 and P-256 are skipped")
    func perConfigurationCount() {
        var order: [String] = []
        var counts: [String: (passed: Int, failed: Int, skipped: Int)] = [:]
        for vector in OPAQUEVector.all {
            let name = vector.configurationName
            if counts[name] == nil {
                order.append(name)
                counts[name] = (0, 0, 0)
            }
            guard vector.isRistretto255 else {
                counts[name]?.skipped += 1
                continue
            }
            let mismatches = (try? vector.isFake ? Self.runFake(vector) : Self.runReal(vector)) ?? ["threw"]
            if mismatches.isEmpty {
                counts[name]?.passed += 1
            } else {
                counts[name]?.failed += 1
            }
        }
        print("OPAQUE test vectors (RFC 9807, identity KSF):")
        for name in order {
            let c = counts[name] ?? (0, 0, 0)
            let note = c.skipped > 0 ? "  (not implemented: QOPAQUE is ristretto255 only)" : ""
            print(
                "  \(name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(c.passed) passed, \(c.failed) failed, "
                    + "\(c.skipped) skipped\(note)"
            )
        }
        let failed = counts.values.map(\.failed).reduce(0, +)
        let passed = counts.values.map(\.passed).reduce(0, +)
        let skipped = counts.values.map(\.skipped).reduce(0, +)
        #expect(failed == 0)
        #expect(passed == 3)
        #expect(skipped == 6)
    }
}
