import QNSPCrypto

/// The out-of-band secret of a stealth server: `qnsp-stealth1 <base64 of 32 bytes>`
/// (docs/protocol.md §9.1). The server derives it from its host key's X-Wing seed.
public struct StealthLine: Sendable, Equatable, CustomStringConvertible {
    public static let prefix = "qnsp-stealth1"
    public static let secretSize = 32
    /// Length of the base64 text of the secret (padded).
    static let encodedSize = 44

    /// The 32-byte stealth secret `S`.
    public let secret: SecretBytes

    public init(secret: [UInt8]) throws(StealthError) {
        guard secret.count == Self.secretSize else { throw .malformedLine("the secret must be 32 bytes, got \(secret.count)") }
        self.secret = SecretBytes(copying: secret)
    }

    /// Parses a line; surrounding whitespace is ignored, nothing else is accepted.
    public init(parsing text: String) throws(StealthError) {
        let trimmed = text.trimmingWhitespace
        let parts = trimmed.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .malformedLine("expected \"\(Self.prefix) <base64>\"") }
        guard parts[0] == Self.prefix else { throw .malformedLine("it must start with \(Self.prefix)") }
        let encoded = parts[1]
        guard encoded.utf8.count == Self.encodedSize else { throw .malformedLine("the secret must be \(Self.encodedSize) base64 characters") }
        guard let bytes = Base64.decode(encoded), bytes.count == Self.secretSize, Base64.encode(bytes) == encoded else {
            throw .malformedLine("the secret is not canonical base64 of 32 bytes")
        }
        self.secret = SecretBytes(copying: bytes)
    }

    /// Derives the line of a host key (from its X-Wing seed; one way).
    public init(hostKey: HostKeyPair) {
        var seed = hostKey.kemKey.seed
        defer { ConstantTime.wipe(&seed) }
        self.init(kemSeed: seed)
    }

    /// `S = HKDF-Expand-Label(Extract("qnsp1 stealth line", seed), "stealth line", "", 32)`.
    public init(kemSeed seed: [UInt8]) {
        let prk = KeyDerivation.extract(salt: Array("qnsp1 stealth line".utf8), secret: seed)
        self.secret = KeyDerivation.expandLabelSecret(secret: prk, label: "stealth line", context: [], length: Self.secretSize)
    }

    /// The line as `qssh-keygen` prints it.
    public var description: String {
        Self.prefix + " " + Base64.encode(secret.withUnsafeBytes { Array($0) })
    }

    public static func == (a: StealthLine, b: StealthLine) -> Bool { a.secret == b.secret }
}

extension String {
    fileprivate var trimmingWhitespace: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return "" }
        guard let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return self[start...end]
    }
}
