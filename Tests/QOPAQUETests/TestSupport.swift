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

/// SplitMix64: a small seeded generator so that randomized tests are reproducible.
struct TestRNG: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}

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
                index: index, config: entry["config"] ?? [:], inputs: entry["inputs"] ?? [:],
                intermediates: entry["intermediates"] ?? [:], outputs: entry["outputs"] ?? [:])
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
            let configuration = try? OPAQUEConfiguration(context: Array("qopaque tests".utf8), keyStretching: .argon2id(parameters))
        else { preconditionFailure("test configuration") }
        return configuration
    }()
}
