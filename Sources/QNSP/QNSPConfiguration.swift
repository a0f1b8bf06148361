import QNSPCrypto

/// Tunables shared by both ends of a QNSP connection.
public struct QNSPConfiguration: Sendable {
    /// The protocol versions this implementation speaks.
    public static let supportedVersions: [UInt8] = [1]
    public static let defaultCellSize = 768
    public static let cellSizeRange = 256...16384

    /// Size of every cell on the wire, in bytes (multiple of 16).
    public var cellSize: Int = QNSPConfiguration.defaultCellSize
    /// AEADs in order of preference.
    public var ciphers: [AEADAlgorithm] = [.aes256GCM, .chaCha20Poly1305]
    /// A sender updates its key after this many payload bytes.
    public var rekeyAfterBytes: UInt64 = 1 << 30
    /// Largest handshake message body accepted.
    public var maxHandshakeMessageSize: Int = 16384
    /// Which service the client asks for (sent encrypted in the client hello).
    public var service: String = "raw"

    public init() {}

    public static func validate(cellSize: Int) -> Bool {
        cellSizeRange.contains(cellSize) && cellSize % 16 == 0
    }
}
