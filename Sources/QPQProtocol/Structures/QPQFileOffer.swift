/// The MLS application message that sends a file (docs/messaging.md §6.4): where the encrypted
/// blob is and how to decrypt and check it. Only group members see it (it travels inside MLS).
///
///     0x00 || "QPQF" || version u8 = 1 || cipher u8 (1 = AES-256-GCM) || blobId[16] || key[32] ||
///     size u64 || chunkSize u32 || sha256[32] || name: string8<255>
public struct QPQFileOffer: Sendable, Equatable {
    public static let magic: [UInt8] = [0x00, 0x51, 0x50, 0x51, 0x46]  // 0x00 "QPQF"
    public static let version: UInt8 = 1
    /// AES-256-GCM, nonce = "qpqf" || u64(chunk index), tag 16 bytes per chunk.
    public static let aes256GCM: UInt8 = 1
    public static let keySize = 32
    public static let maxName = 255
    /// Plaintext chunk sizes a receiver accepts (a ciphertext chunk is 16 bytes longer and must fit one `BlobDownload`).
    public static let chunkSizes: ClosedRange<UInt32> = 4096...UInt32(QPQLimits.maxBlobPiece - 16)

    public var cipher: UInt8
    public var blobId: [UInt8]
    public var key: [UInt8]
    /// Plaintext size.
    public var size: UInt64
    public var chunkSize: UInt32
    /// SHA-256 of the plaintext.
    public var sha256: [UInt8]
    /// The name the sender gave; a receiver never uses it as a path as it is.
    public var name: String

    public init(cipher: UInt8 = QPQFileOffer.aes256GCM, blobId: [UInt8], key: [UInt8], size: UInt64, chunkSize: UInt32,
                sha256: [UInt8], name: String) {
        self.cipher = cipher
        self.blobId = blobId
        self.key = key
        self.size = size
        self.chunkSize = chunkSize
        self.sha256 = sha256
        self.name = name
    }

    /// Number of chunks (an empty file is one empty chunk).
    public var chunkCount: UInt64 { Swift.max(1, (size + UInt64(chunkSize) - 1) / UInt64(chunkSize)) }
    /// Size of the encrypted blob: every chunk carries a 16-byte tag.
    public var blobSize: UInt64 { size + 16 * chunkCount }

    /// Whether application data is a file offer rather than text.
    public static func isOffer(_ data: [UInt8]) -> Bool { data.starts(with: magic) }

    public func encoded() throws(QPQEncodeError) -> [UInt8] {
        var w = QPQWriter(capacity: 160 + name.utf8.count)
        for b in Self.magic { w.u8(b) }
        w.u8(Self.version)
        w.u8(cipher)
        try w.fixed(blobId, QPQLimits.blobIdSize, "blobId")
        try w.fixed(key, Self.keySize, "key")
        w.u64(size)
        guard Self.chunkSizes.contains(chunkSize) else { throw .invalidField(field: "chunkSize", reason: "must be \(Self.chunkSizes)") }
        w.u32(chunkSize)
        try w.fixed(sha256, 32, "sha256")
        try w.string8(name, max: Self.maxName, "name")
        return w.bytes
    }

    public init(decoding data: [UInt8]) throws(QPQDecodeError) {
        var r = QPQReader(data)
        guard try r.fixed(Self.magic.count, "magic") == Self.magic else { throw .malformed("magic: not a file offer") }
        let version = try r.u8("version")
        guard version == Self.version else { throw .unsupportedVersion(version) }
        cipher = try r.u8("cipher")
        guard cipher == Self.aes256GCM else { throw .malformed("cipher: \(cipher) is not 1 (AES-256-GCM)") }
        blobId = try r.fixed(QPQLimits.blobIdSize, "blobId")
        key = try r.fixed(Self.keySize, "key")
        size = try r.u64("size")
        chunkSize = try r.u32("chunkSize")
        guard Self.chunkSizes.contains(chunkSize) else { throw .malformed("chunkSize: \(chunkSize) is not in \(Self.chunkSizes)") }
        guard size <= QPQLimits.maxBlobSize else { throw .malformed("size: \(size) is over \(QPQLimits.maxBlobSize)") }
        sha256 = try r.fixed(32, "sha256")
        name = try r.string8(max: Self.maxName, "name")
        try r.finish("file offer")
    }
}
