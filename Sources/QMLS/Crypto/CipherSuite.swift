// MARK: - Cipher suite identifiers

/// An MLS cipher suite code point (RFC 9420 §17.1), with the algorithms QMLS implements for it.
public struct CipherSuite: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 (mandatory to implement).
    public static let x25519Aes128Sha256Ed25519 = CipherSuite(rawValue: 0x0001)
    /// MLS_128_DHKEMP256_AES128GCM_SHA256_P256.
    public static let p256Aes128Sha256P256 = CipherSuite(rawValue: 0x0002)
    /// MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519.
    public static let x25519ChaChaSha256Ed25519 = CipherSuite(rawValue: 0x0003)
    /// MLS_256_DHKEMP521_AES256GCM_SHA512_P521.
    public static let p521Aes256Sha512P521 = CipherSuite(rawValue: 0x0005)
    /// MLS_256_DHKEMP384_AES256GCM_SHA384_P384.
    public static let p384Aes256Sha384P384 = CipherSuite(rawValue: 0x0007)
    /// MLS_192_XWING_AES256GCM_SHA384_MLDSA65: X-Wing (ML-KEM-768 + X25519) HPKE, AES-256-GCM,
    /// HKDF/HMAC-SHA-384 and pure ML-DSA-65 signatures. A private-use code point: no IETF document
    /// assigns one to this combination yet (see docs/mls.md).
    public static let xwingAes256Sha384MLDSA65 = CipherSuite(rawValue: 0xF001)

    /// The suites QMLS implements, in order of preference.
    public static let supported: [CipherSuite] = [
        .x25519Aes128Sha256Ed25519,
        .p256Aes128Sha256P256,
        .x25519ChaChaSha256Ed25519,
        .p521Aes256Sha512P521,
        .p384Aes256Sha384P384,
        .xwingAes256Sha384MLDSA65,
    ]

    public var isSupported: Bool {
        Self.supported.contains(self)
    }

    public var description: String {
        switch self {
        case .x25519Aes128Sha256Ed25519:
            return "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"
        case .p256Aes128Sha256P256:
            return "MLS_128_DHKEMP256_AES128GCM_SHA256_P256"
        case .x25519ChaChaSha256Ed25519:
            return "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519"
        case .p521Aes256Sha512P521:
            return "MLS_256_DHKEMP521_AES256GCM_SHA512_P521"
        case .p384Aes256Sha384P384:
            return "MLS_256_DHKEMP384_AES256GCM_SHA384_P384"
        case .xwingAes256Sha384MLDSA65:
            return "MLS_192_XWING_AES256GCM_SHA384_MLDSA65"
        default:
            return "cipher suite 0x" + String(rawValue, radix: 16)
        }
    }
}

extension CipherSuite: MLSCodable {
    public func encode(to writer: inout MLSWriter) {
        writer.writeUInt16(rawValue)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        rawValue = try reader.readUInt16()
    }
}

// MARK: - Algorithm parameters

/// The hash behind a suite's KDF (HKDF), MAC (HMAC) and transcript hashes.
enum HashAlgorithm: Sendable {
    case sha256
    case sha384
    case sha512

    /// Output length in bytes (`KDF.Nh`).
    var length: Int {
        switch self {
        case .sha256:
            return 32
        case .sha384:
            return 48
        case .sha512:
            return 64
        }
    }
}

/// The AEAD of a suite (used for HPKE and for message protection).
enum AEADAlgorithm: Sendable {
    case aes128GCM
    case aes256GCM
    case chaCha20Poly1305

    /// Key length (`AEAD.Nk`).
    var keyLength: Int {
        switch self {
        case .aes128GCM:
            return 16
        case .aes256GCM, .chaCha20Poly1305:
            return 32
        }
    }

    /// Nonce length (`AEAD.Nn`).
    var nonceLength: Int {
        12
    }

    static let tagLength = 16
}

/// The HPKE KEM of a suite.
enum KEMAlgorithm: Sendable {
    case x25519
    case p256
    case p384
    case p521
    case xWing

    /// The RFC 9180 / draft-connolly-cfrg-xwing-kem KEM identifier.
    var identifier: UInt16 {
        switch self {
        case .p256:
            return 0x0010
        case .p384:
            return 0x0011
        case .p521:
            return 0x0012
        case .x25519:
            return 0x0020
        case .xWing:
            return 0x647a
        }
    }

    /// Private key length (`Nsk`).
    var privateKeyLength: Int {
        switch self {
        case .x25519, .p256, .xWing:
            return 32
        case .p384:
            return 48
        case .p521:
            return 66
        }
    }

    /// The KDF the KEM itself uses for DeriveKeyPair (not the suite's KDF).
    var kdf: HashAlgorithm {
        switch self {
        case .x25519, .p256, .xWing:
            return .sha256
        case .p384:
            return .sha384
        case .p521:
            return .sha512
        }
    }
}

/// The signature scheme of a suite.
enum SignatureAlgorithm: Sendable {
    case ed25519
    case ecdsaP256
    case ecdsaP384
    case ecdsaP521
    case mlDSA65
}
