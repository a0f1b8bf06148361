import QSSHTestSupport
import Foundation
import Testing

@testable import QOPAQUE

/// Hex encoding and decoding for test data.
enum Hex {
    static func decode(_ string: String) -> [UInt8] {
        precondition(string.count.isMultiple(of: 2), "odd hex length")
        var out: [UInt8] = []
        out.reserveCapacity(string.count / 2)
        var index = string.startIndex
        while index < string.endIndex {
            let next = string.index(index, offsetBy: 2)
            guard let byte = UInt8(string[index..<next], radix: 16) else { preconditionFailure("bad hex \(string)") }
            out.append(byte)
            index = next
        }
        return out
    }

    static func encode(_ bytes: some ContiguousBytes) -> String {
        bytes.withUnsafeBytes { raw in raw.map { String(format: "%02x", $0) }.joined() }
    }
}

/// The shared seeded generator under the name these tests use.
typealias TestRNG = SplitMix64

/// One entry of the RFC 9807 test vectors file (Tests/QOPAQUETests/Resources/vectors.json, a copy of
/// the CFRG draft repository's poc/vectors/vectors.json).
struct OPAQUEVector: Sendable, CustomTestStringConvertible {
    let index: Int
    let config: [String: String]
    let inputs: [String: String]
    let intermediates: [String: String]
    let outputs: [String: String]

    var group: String { config["Group"] ?? "?" }
    var isFake: Bool { config["Fake"] == "True" }
    var isRistretto255: Bool { group == "ristretto255" && config["OPRF"] == "ristretto255-SHA512" }
    /// "ristretto255 real", "curve25519 fake", "P-256 real", ...
    var configurationName: String {
        let name = group.hasPrefix("P256") ? "P-256" : group
        return "\(name) \(isFake ? "fake" : "real")"
    }
    var testDescription: String { "#\(index) \(configurationName)" }

    func input(_ key: String) -> [UInt8] { Hex.decode(inputs[key] ?? "") }
    func optionalInput(_ key: String) -> [UInt8]? { inputs[key].map(Hex.decode) }
    func intermediate(_ key: String) -> [UInt8] { Hex.decode(intermediates[key] ?? "") }
    func output(_ key: String) -> [UInt8] { Hex.decode(outputs[key] ?? "") }

    static let all: [OPAQUEVector] = {
        guard let url = Bundle.module.url(forResource: "vectors", withExtension: "json"),
            let data = try? Data(contentsOf: url),
            let list = try? JSONSerialization.jsonObject(with: data) as? [[String: [String: String]]]
        else { return [] }
        return list.enumerated().map { index, entry in
            OPAQUEVector(
                index: index,
                config: entry["config"] ?? [:],
                inputs: entry["inputs"] ?? [:],
                intermediates: entry["intermediates"] ?? [:],
                outputs: entry["outputs"] ?? [:]
            )
        }
    }()

    static var ristrettoReal: [OPAQUEVector] { all.filter { $0.isRistretto255 && !$0.isFake } }
    static var ristrettoFake: [OPAQUEVector] { all.filter { $0.isRistretto255 && $0.isFake } }
}

extension OPAQUEConfiguration {
    /// The identity KSF with a given context: the test vectors' configuration.
    static func testVectors(context: [UInt8]) -> OPAQUEConfiguration {
        // The vectors' context is 10 bytes; this cannot fail.
        guard let configuration = try? OPAQUEConfiguration(context: context, keyStretching: .identity) else {
            preconditionFailure("context")
        }
        return configuration
    }

    /// Argon2id at a small cost, for protocol tests that are not about the KSF's cost.
    static let fastArgon2id: OPAQUEConfiguration = {
        guard let parameters = try? Argon2idParameters(memoryKiB: 256, iterations: 1),
            let configuration = try? OPAQUEConfiguration(
                context: Array("qopaque tests".utf8),
                keyStretching: .argon2id(parameters)
            )
        else { preconditionFailure("test configuration") }
        return configuration
    }()
}

/// Registration and login between our own client and server, in memory.
struct LocalAccount {
    let server: OPAQUEServer
    let identifier: [UInt8]
    let record: RegistrationRecord
    let exportKey: SecretBytes

    /// Registers `password` under `identifier` on a fresh server (or `server`).
    static func register(
        password: [UInt8],
        identifier: [UInt8] = Array("alice".utf8),
        configuration: OPAQUEConfiguration = .fastArgon2id,
        server: OPAQUEServer? = nil
    ) throws -> LocalAccount {
        let server = try server ?? OPAQUEServer(setup: .generate(), configuration: configuration)
        var client = try OPAQUEClientRegistration(password: password, configuration: configuration)
        let response = try server.registrationResponse(
            to: RegistrationRequest(bytes: client.request.bytes),
            credentialIdentifier: identifier
        )
        let result = try client.finish(response: RegistrationResponse(bytes: response.bytes))
        let record = try RegistrationRecord(bytes: result.record.bytes)
        return LocalAccount(server: server, identifier: identifier, record: record, exportKey: result.exportKey)
    }

    /// The outcome of one login attempt, each side's result kept apart.
    struct Attempt {
        var client: Result<OPAQUEClientLogin.Result, OPAQUEError>
        var server: Result<SecretBytes, OPAQUEError>?
    }

    /// Logs in with `password` (the record is used unless `unknownUser`); `mutateKE2` may tamper.
    func login(
        password: [UInt8],
        configuration: OPAQUEConfiguration = .fastArgon2id,
        unknownUser: Bool = false,
        mutateKE2: ((inout [UInt8]) -> Void)? = nil
    ) throws -> Attempt {
        var client = try OPAQUEClientLogin(password: password, configuration: configuration)
        var (serverLogin, ke2) = try server.startLogin(
            ke1: KE1(bytes: client.ke1.bytes),
            record: unknownUser ? nil : record,
            credentialIdentifier: identifier
        )
        var ke2Bytes = ke2.bytes
        mutateKE2?(&ke2Bytes)
        let decoded: KE2
        do {
            decoded = try KE2(bytes: ke2Bytes)
        } catch {
            return Attempt(client: .failure(error), server: nil)
        }
        let clientResult = Result { () throws(OPAQUEError) in try client.finish(ke2: decoded) }
        guard case .success(let finished) = clientResult else { return Attempt(client: clientResult, server: nil) }
        let serverResult = Result { () throws(OPAQUEError) in try serverLogin.finish(ke3: finished.ke3) }
        return Attempt(client: clientResult, server: serverResult)
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }

    var value: Success? {
        if case .success(let value) = self { return value }
        return nil
    }
}
