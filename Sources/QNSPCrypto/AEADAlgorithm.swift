/// The AEAD algorithms QNSP can protect cells with. Both take 32-byte keys,
/// 12-byte nonces and produce 16-byte tags.
public enum AEADAlgorithm: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case aes256GCM = 1
    case chaCha20Poly1305 = 2

    public static let keySize = 32
    public static let nonceSize = 12
    public static let tagSize = 16

    public var description: String {
        switch self {
        case .aes256GCM: return "aes256-gcm"
        case .chaCha20Poly1305: return "chacha20-poly1305"
        }
    }

    public init?(name: String) {
        guard let match = Self.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = match
    }
}
