/// Makes text from a peer or a file safe to print on a terminal or write as one log line.
///
/// A peer chooses the bytes of a Reject message, a close reason or a user name; printed as they
/// are, an escape sequence could rewrite the user's terminal and a newline could forge a log
/// line. ``escaped(_:)`` keeps printable text as it is and writes every C0/C1 control character,
/// DEL, and the Unicode bidirectional and invisible formatting characters as `\n`, `\t`, `\\`,
/// `\xNN` or `\u{NNNN}`, so what is shown is exactly what was sent and nothing more.
public enum PrintableText {
    /// The text with control and formatting characters escaped (see the type's description).
    /// - Parameter backslash: also double backslashes, so that the result is unambiguous (off for
    ///   text that may already be escaped, such as our own messages quoting peer text).
    public static func escaped(_ text: some StringProtocol, backslash: Bool = true) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\" where backslash: out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if isUnsafe(scalar) {
                    out +=
                        scalar.value < 0x100
                        ? "\\x" + hex(scalar.value, width: 2) : "\\u{" + hex(scalar.value, width: 4) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// Escapes the control characters in each line of a message of our own that may quote peer
    /// text, keeping the line breaks we put there (multi-line warnings) and backslashes as they
    /// are (peer text in it is usually escaped already).
    public static func escapedKeepingLines(_ text: some StringProtocol) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { escaped($0, backslash: false) }.joined(
            separator: "\n"
        )
    }

    /// Decodes peer bytes as UTF-8 (invalid sequences become U+FFFD) and escapes the result.
    public static func escaped(utf8 bytes: some Collection<UInt8>) -> String {
        escaped(String(decoding: bytes, as: UTF8.self))
    }

    /// Whether the text contains any character that `escaped` would rewrite (other than `\`).
    public static func containsControlCharacters(_ text: some StringProtocol) -> Bool {
        text.unicodeScalars.contains(where: isUnsafe)
    }

    /// C0 and C1 controls, DEL, and formatting characters that reorder or hide text.
    static func isUnsafe(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x200B...0x200F, 0x2028...0x202E, 0x2060...0x2069, 0xFEFF: return true
        default: return false
        }
    }

    private static func hex(_ v: UInt32, width: Int) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
