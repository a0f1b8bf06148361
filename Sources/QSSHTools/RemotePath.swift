/// One qscp operand: a local path, or `[user@]host:path` (as scp reads it: a colon before
/// any slash; `[v6addr]:path` for IPv6; a leading `/` or `./` is always local).
struct RemotePath: Equatable {
    var user: String?
    var host: String
    var path: String

    /// nil for a local path.
    static func parse(_ text: String) -> RemotePath? {
        guard !text.hasPrefix("/"), !text.hasPrefix("./"), !text.hasPrefix("../") else { return nil }
        var rest = Substring(text)
        var user: String?
        if let at = rest.firstIndex(of: "@"), let colon = rest.firstIndex(of: ":"), at < colon, !rest[..<at].contains("/") {
            user = String(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        let host: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), rest[rest.index(after: close)...].hasPrefix(":") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(close, offsetBy: 2)...]
        } else {
            guard let colon = rest.firstIndex(of: ":") else { return nil }
            host = rest[..<colon]
            guard !host.isEmpty, !host.contains("/") else { return nil }
            rest = rest[rest.index(after: colon)...]
        }
        return RemotePath(user: user, host: String(host), path: rest.isEmpty ? "." : String(rest))
    }

    var destination: String { (user.map { $0 + "@" } ?? "") + host }
}
