import Foundation
import QNSP
import QNSPCrypto
import QNSPNIO

/// The value of a client's `--stealth` / `-o Stealth=` / config `Stealth`: a stealth line
/// (`qnsp-stealth1 <base64>`), its base64 part alone, or a file holding the line.
enum StealthArgument {
    static func line(from value: String) throws -> StealthLine {
        let text = value.trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            if text.hasPrefix(StealthLine.prefix + " ") { return try StealthLine(parsing: text) }
            if text.contains("/") || FileManager.default.fileExists(atPath: text) {
                let contents: String
                do { contents = try KeyFileIO.readText(path: (text as NSString).expandingTildeInPath, limit: 1 << 16) } catch {
                    throw ToolError("stealth: cannot read \(text): \(error)")
                }
                guard let first = contents.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix(StealthLine.prefix + " ") }) else {
                    throw ToolError("stealth: \(text) holds no '\(StealthLine.prefix) ...' line")
                }
                return try StealthLine(parsing: String(first))
            }
            return try StealthLine(parsing: StealthLine.prefix + " " + text)
        } catch let e as StealthError {
            throw ToolError("stealth: \(e)")
        }
    }

    /// A server's stealth settings from its host key (one replay filter for the process).
    static func serverOptions(host: HostKeyPair, mimic: Bool = false) -> StealthOptions {
        var o = StealthOptions(line: StealthLine(hostKey: host))
        o.mimic = mimic
        return o
    }

    /// A client's stealth settings.
    static func clientOptions(_ value: String, mimic: Bool) throws -> StealthOptions {
        var o = StealthOptions(line: try line(from: value))
        o.mimic = mimic
        return o
    }

    /// The value of `--padding` / `-o Padding=` / config `Padding`.
    static func padding(_ value: String) throws -> CoverTrafficPolicy {
        guard let p = CoverTrafficPolicy(name: value) else { throw ToolError("padding: expected off, random or constant, not '\(value)'") }
        return p
    }

    /// What a client says when a stealth handshake ended without an answer.
    static let noAnswer = "no answer from the stealth server (wrong stealth line, clock off by more than 120 s, or no stealth server there)"
}
