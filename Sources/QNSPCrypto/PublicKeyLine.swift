/// One-line public keys: `<type> <base64 blob> [comment]`, as in OpenSSH's .pub files.
public enum PublicKeyLine: Sendable, Equatable {
    case user(UserPublicKey, comment: String)
    case host(HostPublicKey, comment: String)

    public var keyType: String {
        switch self {
        case .user: return UserPublicKey.keyType
        case .host: return HostPublicKey.keyType
        }
    }

    public var blob: [UInt8] {
        switch self {
        case .user(let k, _): return k.blob
        case .host(let k, _): return k.blob
        }
    }

    public var comment: String {
        switch self {
        case .user(_, let c), .host(_, let c): return c
        }
    }

    public var fingerprint: String { Fingerprint.sha256(blob) }

    /// The text of the line, without a trailing newline.
    public var text: String {
        let base = keyType + " " + Base64.encode(blob)
        return comment.isEmpty ? base : base + " " + comment
    }

    /// Parses a line; whitespace-separated, comment optional (may contain spaces).
    public init(parsing line: String) throws(QNSPCryptoError) {
        let trimmed = line.trimmedWhitespace()
        let parts = trimmed.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2 else { throw .publicKeyLineMalformed("expected '<type> <base64> [comment]'") }
        guard let blob = Base64.decode(parts[1]) else { throw .publicKeyLineMalformed("key data is not valid base64") }
        let comment = parts.count == 3 ? String(parts[2]) : ""
        switch String(parts[0]) {
        case UserPublicKey.keyType: self = .user(try UserPublicKey(blob: blob), comment: comment)
        case HostPublicKey.keyType: self = .host(try HostPublicKey(blob: blob), comment: comment)
        default: throw .publicKeyLineMalformed("unknown key type '\(parts[0])'")
        }
    }
}

extension StringProtocol {
    /// The string without leading and trailing whitespace and newlines.
    func trimmedWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace || f.isNewline { s.removeFirst() }
        while let l = s.last, l.isWhitespace || l.isNewline { s.removeLast() }
        return String(s)
    }
}
