import QSSHTestSupport
import Testing

@testable import QOPAQUE

/// Random and mutated input to every decoder and to every state-machine step a peer can reach. Each
/// input must end in an `OPAQUEError` or a clean result (and a decoded message must re-encode to the
/// same bytes); a crash fails the whole test process.
@Suite("OPAQUE fuzz")
struct FuzzTests {
    /// Mutations that mostly keep the length, so that inputs reach the element checks.
    static func mutate(_ input: [UInt8], _ rng: inout TestRNG) -> [UInt8] {
        var bytes = input
        switch Int.random(in: 0..<8, using: &rng) {
        case 0, 1:
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            }
        case 2:
            for _ in 0..<Int.random(in: 1...8, using: &rng) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] =
                    [0, 0xff, 0x7f, 0x80, 0xed, 1][
                        Int.random(in: 0..<6, using: &rng)
                    ]
            }
        case 3:
            // One 32-byte window replaced: random bytes, zeros (identity) or all ones.
            if bytes.count >= 32 {
                let start = Int.random(in: 0...(bytes.count - 32), using: &rng)
                let choice = Int.random(in: 0..<3, using: &rng)
                let window = choice == 0 ? rng.bytes(32) : [UInt8](repeating: choice == 1 ? 0 : 0xff, count: 32)
                bytes.replaceSubrange(start..<(start + 32), with: window)
            }
        case 4:
            bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng)))
        case 5:
            bytes += rng.bytes(Int.random(in: 1...64, using: &rng))
        case 6:
            bytes = rng.bytes(bytes.count)
        default:
            if bytes.count > 8 {
                let start = Int.random(in: 0..<(bytes.count - 4), using: &rng)
                bytes.removeSubrange(start..<(start + 4))
            }
        }
        return bytes
    }

    /// Valid samples of every message, from a real registration and login whose randomness is fixed, so
    /// that a client (or server) built again from the same values accepts the unmutated messages.
    struct Samples {
        static let configuration = OPAQUEConfiguration.testVectors(context: Array("fuzz".utf8))
        static let password = Array("pw".utf8)
        let server: OPAQUEServer
        let record: RegistrationRecord
        let all: [[UInt8]]
        let ke1: KE1
        let ke2: KE2
        let ke3: KE3
        let blind: Ristretto255Scalar
        let clientNonce: [UInt8]
        let clientKeyshareSeed: SecretBytes
        let serverKeyshareSeed: SecretBytes

        init() throws {
            server = try OPAQUEServer(setup: .generate(), configuration: Self.configuration)
            var registration = try OPAQUEClientRegistration(password: Self.password, configuration: Self.configuration)
            let response = try server.registrationResponse(to: registration.request, credentialIdentifier: [1])
            record = try registration.finish(response: response).record
            blind = Ristretto255Scalar.random()
            clientNonce = SecretBytes.random(count: 32).copiedBytes()
            clientKeyshareSeed = SecretBytes.random(count: 32)
            serverKeyshareSeed = SecretBytes.random(count: 32)
            var login = try Self.client(blind: blind, clientNonce: clientNonce, keyshareSeed: clientKeyshareSeed)
            ke1 = login.ke1
            ke2 = try Self.serverLogin(server, ke1: ke1, record: record, keyshareSeed: serverKeyshareSeed).ke2
            ke3 = try login.finish(ke2: ke2).ke3
            all = [
                registration.request.bytes, response.bytes, record.bytes, ke1.bytes, ke2.bytes,
                ke2.credentialResponse.bytes, ke3.bytes, record.envelope.bytes,
                try OPAQUEServerSetup.generate().serialized.copiedBytes(),
            ]
        }

        static func client(
            blind: Ristretto255Scalar,
            clientNonce: [UInt8],
            keyshareSeed: SecretBytes
        ) throws -> OPAQUEClientLogin {
            try OPAQUEClientLogin(
                password: password,
                configuration: configuration,
                blind: blind,
                clientNonce: clientNonce,
                keyshareSeed: keyshareSeed
            )
        }

        static func serverLogin(
            _ server: OPAQUEServer,
            ke1: KE1,
            record: RegistrationRecord?,
            keyshareSeed: SecretBytes
        ) throws -> (login: OPAQUEServerLogin, ke2: KE2) {
            try server.generateKE2(
                ke1: ke1,
                record: record ?? server.fakeRecord(credentialIdentifier: [1]),
                isFake: record == nil,
                credentialIdentifier: [1],
                serverIdentity: nil,
                clientIdentity: nil,
                maskingNonce: [UInt8](repeating: 3, count: 32),
                serverNonce: [UInt8](repeating: 4, count: 32),
                keyshareSeed: keyshareSeed,
                trace: nil
            )
        }

        /// A client in the state that produced ``ke1``.
        func replayedClient() throws -> OPAQUEClientLogin {
            try Self.client(blind: blind, clientNonce: clientNonce, keyshareSeed: clientKeyshareSeed)
        }

        /// A server login in the state that produced ``ke2``.
        func replayedServerLogin() throws -> OPAQUEServerLogin {
            try Self.serverLogin(server, ke1: ke1, record: record, keyshareSeed: serverKeyshareSeed).login
        }
    }

    static let iterations = 100_000

    @Test("every decoder: 100,000 random and mutated inputs each", .timeLimit(.minutes(5)))
    func decoders() throws {
        var rng = TestRNG(seed: 0x09a9)
        let samples = try Samples()
        var accepted = [Int](repeating: 0, count: DecoderTests.decoders.count + 2)
        var roundTripFailures = 0
        for index in 0..<Self.iterations {
            let input: [UInt8]
            switch index % 4 {
            case 0:
                input = rng.bytes(Int.random(in: 0...400, using: &rng))
            case 1:
                input = rng.bytes([32, 64, 96, 192, 320][Int.random(in: 0..<5, using: &rng)])
            default:
                input = Self.mutate(samples.all[Int.random(in: 0..<samples.all.count, using: &rng)], &rng)
            }
            for (slot, decoder) in DecoderTests.decoders.enumerated() {
                if let output = try? decoder.roundTrip(input) {
                    accepted[slot] += 1
                    if output != input {
                        roundTripFailures += 1
                    }
                }
            }
            if (try? Ristretto255Scalar(canonical: input)) != nil {
                accepted[DecoderTests.decoders.count] += 1
            }
            if (try? OPAQUEServerSetup(serialized: input)) != nil {
                accepted[DecoderTests.decoders.count + 1] += 1
            }
        }
        print(
            "OPAQUE decoder fuzz: \(Self.iterations) inputs to each of \(accepted.count) decoders; "
                + "accepted: \(accepted)"
        )
        #expect(roundTripFailures == 0)
        // Some inputs of every kind must get through, or the mutations never reach the deeper checks.
        #expect(accepted.allSatisfy { $0 > 0 })
    }

    @Test("state machines: 20,000 mutated KE1, KE2, KE3 and registration messages each", .timeLimit(.minutes(5)))
    func stateMachines() throws {
        var rng = TestRNG(seed: 0x5eed)
        let samples = try Samples()
        var outcomes: [String: Int] = [:]
        var foreignErrors = 0
        var wronglyAccepted = 0
        var wronglyRefused = 0
        /// Runs one step; `shouldSucceed` is whether the (possibly unchanged) input is the genuine one.
        func note(_ what: String, shouldSucceed: Bool?, _ body: () throws -> Void) {
            do {
                try body()
                outcomes[what + " ok", default: 0] += 1
                if shouldSucceed == false {
                    wronglyAccepted += 1
                }
            } catch let error as OPAQUEError {
                outcomes[what + " " + String(describing: error).prefix(28), default: 0] += 1
                if shouldSucceed == true {
                    wronglyRefused += 1
                }
            } catch {
                foreignErrors += 1
            }
        }
        for _ in 0..<20_000 {
            // Server: a KE1 from the network, for a known and an unknown user.
            let ke1Bytes = Self.mutate(samples.ke1.bytes, &rng)
            let known = Bool.random(using: &rng)
            note("KE1", shouldSucceed: nil) {
                _ = try samples.server.startLogin(
                    ke1: KE1(bytes: ke1Bytes),
                    record: known ? samples.record : nil,
                    credentialIdentifier: [1]
                )
            }
            // Client: a KE2 from the network, at the client whose KE1 it answers.
            let ke2Bytes = Self.mutate(samples.ke2.bytes, &rng)
            note("KE2", shouldSucceed: ke2Bytes == samples.ke2.bytes) {
                var login = try samples.replayedClient()
                _ = try login.finish(ke2: KE2(bytes: ke2Bytes))
            }
            // Server: a KE3 from the network, at the server login whose KE2 it answers.
            let ke3Bytes = Self.mutate(samples.ke3.bytes, &rng)
            note("KE3", shouldSucceed: ke3Bytes == samples.ke3.bytes) {
                var login = try samples.replayedServerLogin()
                _ = try login.finish(ke3: KE3(bytes: ke3Bytes))
            }
            // Registration: request at the server, response at the client.
            let requestBytes = Self.mutate(samples.all[0], &rng)
            note("RegistrationRequest", shouldSucceed: nil) {
                _ = try samples.server.registrationResponse(
                    to: RegistrationRequest(bytes: requestBytes),
                    credentialIdentifier: rng.bytes(4)
                )
            }
            let responseBytes = Self.mutate(samples.all[1], &rng)
            note("RegistrationResponse", shouldSucceed: nil) {
                var registration = try OPAQUEClientRegistration(
                    password: Samples.password,
                    configuration: Samples.configuration
                )
                _ = try registration.finish(response: RegistrationResponse(bytes: responseBytes))
            }
        }
        print("OPAQUE state-machine fuzz outcomes:")
        for (key, value) in outcomes.sorted(by: { $0.key < $1.key }) {
            print("  \(key.padding(toLength: 50, withPad: " ", startingAt: 0)) \(value)")
        }
        #expect(foreignErrors == 0)
        // A changed KE2 or KE3 never completes a login; the genuine one always does.
        #expect(wronglyAccepted == 0)
        #expect(wronglyRefused == 0)
        // The mutations reach the MAC checks, not only the decoders.
        func count(_ prefix: String) -> Int {
            outcomes.filter { $0.key.hasPrefix(prefix) }.map(\.value).reduce(0, +)
        }
        #expect(count("KE2 the server's key-exchange MA") > 0)
        #expect(count("KE3 login failed") > 0)
    }
}
