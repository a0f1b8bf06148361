import Foundation

/// Intermediate values of one run, recorded under the test vectors' names (randomized_password,
/// auth_key, handshake_secret, ...) so that tests can check each. Production paths pass `nil`.
final class OPAQUETrace {
    private(set) var values: [String: [UInt8]] = [:]

    func record(_ name: String, _ value: some ContiguousBytes) {
        values[name] = value.withUnsafeBytes { Array($0) }
    }

    subscript(_ name: String) -> [UInt8]? { values[name] }
}
