/// The size and count limits of qpq/1 (docs/messaging.md §7), shared by the codec and the server.
public enum QPQLimits {
    /// The protocol version this code speaks (the first byte of every frame body).
    public static let version: UInt8 = 1
    /// Largest frame body (the length prefix's maximum) for every frame but those below.
    public static let maxFrame = 2 * 1024 * 1024
    /// Largest frame body of a `Commit` request on a logged-in connection and of any frame from
    /// the server (a response or push may carry one welcome or commit envelope). Welcomes carry
    /// the ratchet tree: about 6.6 KB per member (measured, docs/messaging.md §7.1).
    public static let maxLargeFrame = 16 * 1024 * 1024
    /// `Messages` responses stop adding envelopes before the body passes this.
    public static let maxFetchBytes = 1536 * 1024
    public static let maxUserName = 32
    public static let maxDeviceName = 64
    public static let maxGroupId = 64
    public static let maxKeyPackage = 16 * 1024
    public static let maxKeyPackagesPerUpload = 100
    public static let maxStoredKeyPackages = 200
    public static let maxMessage = 1024 * 1024
    /// A commit's UpdatePath grows with the members (one X-Wing ciphertext per resolution node,
    /// up to one per member after many adds): 267 KB measured for one add at 200 members, 355 KB
    /// for 10 adds; ≈ 1.3 MB extrapolated at ``maxMembers``.
    public static let maxCommit = 2 * 1024 * 1024
    /// 1.33 MB measured at 200 members; this covers ``maxMembers`` (≈ 6.6 MB at 1,000).
    public static let maxWelcome = 8 * 1024 * 1024
    /// An envelope's payload: the largest of an application message, a commit and a welcome.
    public static let maxEnvelopePayload = max(maxMessage, maxCommit, maxWelcome)
    public static let maxDevices = 16
    public static let maxMembers = 1000
    public static let maxQueue = 10_000
    public static let maxFetch = 500
    public static let maxAck = 500
    public static let maxErrorMessage = 255
    /// Longest disappearing-message timer (one year).
    public static let maxDisappearSeconds: UInt32 = 365 * 24 * 3600

    /// Most bytes in one `BlobUpload` or `BlobDownload` (and one `BlobData`).
    public static let maxBlobPiece = 1024 * 1024
    /// Largest blob the protocol can name (a server's own limit is lower, §6.4).
    public static let maxBlobSize: UInt64 = 1 << 40
    public static let blobIdSize = 16

    // Fixed sizes (OPAQUE messages, ML-DSA-65, tokens).
    public static let registrationRequestSize = 32
    public static let registrationResponseSize = 64
    public static let registrationRecordSize = 192
    public static let ke1Size = 96
    public static let ke2Size = 320
    public static let ke3Size = 64
    public static let identityKeySize = 1952
    public static let signatureSize = 3309
    public static let tokenSize = 32
    public static let challengeSize = 32

    /// Whether `name` is a valid user name: 1–32 bytes of `a-z 0-9 . _ -`, starting with a letter or digit.
    public static func isValidUserName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...maxUserName).contains(bytes.count) else { return false }
        func allowed(_ b: UInt8, first: Bool) -> Bool {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
            case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"): return !first
            default: return false
            }
        }
        for (i, b) in bytes.enumerated() where !allowed(b, first: i == 0) { return false }
        return true
    }
}
