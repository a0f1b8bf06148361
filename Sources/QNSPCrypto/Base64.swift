#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Strict standard base64 (RFC 4648 with padding), as used in key files and key lines.
public enum Base64 {
    public static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// Decodes; returns nil on any character outside the alphabet or bad padding.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        guard let d = Data(base64Encoded: String(text)) else { return nil }
        return Array(d)
    }
}
