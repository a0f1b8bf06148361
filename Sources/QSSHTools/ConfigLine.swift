/// One setting of an ssh_config / sshd_config-style file: `Keyword value` or `Keyword=value`;
/// blank lines and `#` comments are skipped. Shared by qsshd's `-f` file and `~/.qssh/config`.
package struct ConfigLine {
    /// The keyword as written (compare it lowercased).
    package let keyword: String
    package let value: String
    /// `path:line`, for messages.
    package let location: String

    package static func parse(_ text: String, path: String) -> [ConfigLine] {
        text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { index, raw in
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { return nil }
            let splitAt = line.firstIndex { $0 == " " || $0 == "\t" || $0 == "=" } ?? line.endIndex
            var value = String(line[splitAt...]).trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("=") { value = String(value.dropFirst()).trimmingCharacters(in: .whitespaces) }
            return ConfigLine(keyword: String(line[..<splitAt]), value: value, location: "\(path):\(index + 1)")
        }
    }
}
