import Foundation
import QNSPCrypto

/// qsshd's `--revoked-keys` file (docs/protocol.md §7.7): one entry per line, `#` comments.
///   `qnsp-mldsa65 <base64> [comment]`  a revoked key: no login with it, bare or certified,
///                                     and no certificate signed by it as a CA
///   `serial N` / `serial N-M`         revoked certificate serials (of any trusted CA)
///   `id KEY-ID`                       revoked certificate key ids (the rest of the line)
package struct RevokedKeys: Sendable {
    package private(set) var keys: [[UInt8]] = []
    package private(set) var serials: [ClosedRange<UInt64>] = []
    package private(set) var keyIDs: Set<String> = []

    package init(text: String) throws {
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("serial ") {
                let spec = line.dropFirst(7).trimmingCharacters(in: .whitespaces)
                let bounds = spec.split(separator: "-", maxSplits: 1).map {
                    UInt64($0.trimmingCharacters(in: .whitespaces))
                }
                guard let low = bounds.first ?? nil, let high = bounds.count == 2 ? bounds[1] : low, low <= high else {
                    throw ToolError("revoked keys line \(i + 1): bad serial '\(spec)'")
                }
                serials.append(low...high)
            } else if line.hasPrefix("id ") {
                keyIDs.insert(String(line.dropFirst(3)))
            } else {
                do {
                    keys.append(try PublicKeyLine(parsing: line).blob)
                } catch {
                    throw ToolError("revoked keys line \(i + 1): \(error)")
                }
            }
        }
    }

    package static func load(path: String) throws -> RevokedKeys {
        try RevokedKeys(text: try KeyFileIO.readText(path: path))
    }

    package func isRevoked(_ key: UserPublicKey) -> Bool { keys.contains { ConstantTime.equals($0, key.blob) } }

    /// Why a certificate is revoked, or nil.
    package func revocation(of certificate: QNSPCertificate) -> String? {
        if keys.contains(where: { ConstantTime.equals($0, certificate.subject.blob) }) { return "its key is revoked" }
        if keys.contains(where: { ConstantTime.equals($0, certificate.caKey.rawRepresentation) }) {
            return "its CA key is revoked"
        }
        if serials.contains(where: { $0.contains(certificate.serial) }) {
            return "serial \(certificate.serial) is revoked"
        }
        if keyIDs.contains(certificate.keyID) { return "key id \"\(certificate.keyID)\" is revoked" }
        return nil
    }
}
