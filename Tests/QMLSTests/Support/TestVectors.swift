import Foundation
import QMLS
import Testing

/// Loads the MLS working group's interop vectors copied into Tests/QMLSTests/Vectors.
enum TestVectors {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Vectors")

    /// The JSON array of test cases in `file`.
    static func load(_ file: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: directory.appendingPathComponent(file))
        guard let cases = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw VectorError.malformed(file)
        }
        return cases
    }

    enum VectorError: Error {
        case malformed(String)
        case missing(String)
    }
}

/// Per-file tally of vector cases: passed, failed, and skipped (suites QMLS does not implement).
struct VectorTally: CustomStringConvertible {
    let file: String
    var passed = 0
    var failed = 0
    var skipped = 0
    var skippedSuites: Set<UInt16> = []

    init(_ file: String) {
        self.file = file
    }

    mutating func skip(suite: UInt16) {
        skipped += 1
        skippedSuites.insert(suite)
    }

    mutating func record(_ check: CaseCheck) {
        if check.failures == 0 {
            passed += 1
        } else {
            failed += 1
        }
    }

    var description: String {
        let suites = skippedSuites.sorted().map(String.init).joined(separator: ", ")
        let skippedText = skipped == 0 ? "0" : "\(skipped) (suites \(suites))"
        return "[mls-vectors] \(file): \(passed) passed, \(failed) failed, \(skippedText) skipped"
    }

    /// Prints the tally and fails the test unless every non-skipped case passed.
    func report(sourceLocation: SourceLocation = #_sourceLocation) {
        print(description)
        #expect(failed == 0, "\(description)", sourceLocation: sourceLocation)
        #expect(passed > 0, "no case of \(file) ran", sourceLocation: sourceLocation)
    }
}

/// Collects the failed checks of one vector case; each failure is also recorded as an issue.
/// A class so that checks can be made inside the closures passed to ``run(_:sourceLocation:_:)``.
final class CaseCheck {
    let label: String
    var failures = 0

    init(_ label: String) {
        self.label = label
    }

    func expect(
        _ condition: Bool,
        _ what: @autoclosure () -> String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        if !condition {
            failures += 1
            Issue.record("\(label): \(what())", sourceLocation: sourceLocation)
        }
    }

    /// Runs `body`, counting a thrown error as a failure.
    func run(
        _ what: String,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () throws -> Void
    ) {
        do {
            try body()
        } catch {
            failures += 1
            Issue.record("\(label): \(what) threw \(error)", sourceLocation: sourceLocation)
        }
    }
}

// MARK: - JSON field access

extension Dictionary where Key == String, Value == Any {
    func hex(_ key: String) throws -> [UInt8] {
        guard let string = self[key] as? String, let bytes = [UInt8](hex: string) else {
            throw TestVectors.VectorError.missing(key)
        }
        return bytes
    }

    func optionalHex(_ key: String) throws -> [UInt8]? {
        if self[key] == nil || self[key] is NSNull {
            return nil
        }
        return try hex(key)
    }

    func int(_ key: String) throws -> Int {
        guard let value = self[key] as? Int else {
            throw TestVectors.VectorError.missing(key)
        }
        return value
    }

    func string(_ key: String) throws -> String {
        guard let value = self[key] as? String else {
            throw TestVectors.VectorError.missing(key)
        }
        return value
    }

    func object(_ key: String) throws -> [String: Any] {
        guard let value = self[key] as? [String: Any] else {
            throw TestVectors.VectorError.missing(key)
        }
        return value
    }

    func objects(_ key: String) throws -> [[String: Any]] {
        guard let value = self[key] as? [[String: Any]] else {
            throw TestVectors.VectorError.missing(key)
        }
        return value
    }

    var suite: CipherSuite {
        CipherSuite(rawValue: UInt16(self["cipher_suite"] as? Int ?? 0))
    }
}

extension Array where Element == UInt8 {
    init?(hex: String) {
        var out: [UInt8] = []
        out.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for c in hex.utf8 {
            let nibble: UInt8
            switch c {
            case 48...57:
                nibble = c - 48
            case 97...102:
                nibble = c - 87
            case 65...70:
                nibble = c - 55
            default:
                return nil
            }
            if let h = high {
                out.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        if high != nil {
            return nil
        }
        self = out
    }

    var hex: String {
        map { String(format: "%02x", $0) }.joined()
    }
}
