/// Errors raised by the QNSP crypto layer: key material, key files and primitives.
public enum QNSPCryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidKeySize(what: String, expected: Int, actual: Int)
    case invalidKeyMaterial(String)
    case aeadFailure
    case authenticationFailed
    case randomSourceFailed(String)
    case keyFileMalformed(String)
    case keyFileWrongKind(expected: String, actual: String)
    case keyFilePermissions(path: String, mode: UInt32)
    case keyFileIO(path: String, reason: String)
    case passphraseRequired
    case wrongPassphrase
    case publicKeyLineMalformed(String)
    /// A signer outside this process (an agent) did not produce a signature.
    case signerFailed(String)
    /// A certificate's encoding or fields break the rules of docs/protocol.md §7.7.
    case certificateInvalid(String)

    public var description: String {
        switch self {
        case .invalidKeySize(let what, let expected, let actual):
            return "\(what): expected \(expected) bytes, got \(actual)"
        case .invalidKeyMaterial(let why): return "invalid key material: \(why)"
        case .aeadFailure: return "AEAD operation failed"
        case .authenticationFailed: return "authentication tag mismatch"
        case .randomSourceFailed(let why): return "random source failed: \(why)"
        case .keyFileMalformed(let why): return "malformed key file: \(why)"
        case .keyFileWrongKind(let expected, let actual): return "wrong key kind: expected \(expected) key, found \(actual) key"
        case .keyFilePermissions(let path, let mode):
            return "UNPROTECTED PRIVATE KEY FILE: permissions \(String(mode & 0o777, radix: 8, uppercase: false).leftPadded(to: 4)) for '\(path)' are too open; it must not be readable by group or others (chmod 600 '\(path)')"
        case .keyFileIO(let path, let reason): return "\(path): \(reason)"
        case .passphraseRequired: return "the key is protected by a passphrase"
        case .wrongPassphrase: return "incorrect passphrase supplied to decrypt private key"
        case .publicKeyLineMalformed(let why): return "malformed public key line: \(why)"
        case .signerFailed(let why): return "signing failed: \(why)"
        case .certificateInvalid(let why): return "invalid certificate: \(why)"
        }
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
