import Crypto
import CryptoExtras
import Foundation
import NIOSSH

/// Reads OpenSSH's private key files ("openssh-key-v1", as `ssh-keygen -t ed25519` writes
/// them) for the classical login to a stock sshd behind a qsshd bridge. Ed25519 keys, without a
/// passphrase or protected by one (kdf bcrypt, cipher aes256-ctr: what ssh-keygen writes).
public enum OpenSSHPrivateKey {
    /// Why a key file could not be used.
    public enum KeyError: Error, Equatable, CustomStringConvertible {
        case notOpenSSHFormat
        case malformed(String)
        case encrypted
        case wrongPassphrase
        case unsupportedCipher(String)
        case unsupportedType(String)

        public var description: String {
            switch self {
            case .notOpenSSHFormat: return "not an OpenSSH private key (expected '-----BEGIN OPENSSH PRIVATE KEY-----')"
            case .malformed(let why): return "malformed OpenSSH private key: \(why)"
            case .encrypted: return "the key is passphrase-protected and no passphrase was given"
            case .wrongPassphrase: return "incorrect passphrase"
            case .unsupportedCipher(let c): return "key encrypted with \(c), which qssh does not read (ssh-keygen's default, aes256-ctr with bcrypt, works)"
            case .unsupportedType(let type): return "key type \(type) is not supported (only ssh-ed25519)"
            }
        }
    }

    /// Most bcrypt_pbkdf rounds a key file may ask for.
    public static let maxBcryptRounds = 1 << 16

    /// Parses the text of a private key file, decrypting it with `passphrase` when it is protected.
    public static func parse(_ text: String, passphrase: String? = nil) throws(KeyError) -> NIOSSHPrivateKey {
        NIOSSHPrivateKey(ed25519Key: try parseEd25519(text, passphrase: passphrase))
    }

    /// `parse`, returning the Ed25519 key itself (qssh-add hands its seed to the agent).
    public static func parseEd25519(_ text: String, passphrase: String? = nil) throws(KeyError) -> Curve25519.Signing.PrivateKey {
        let begin = "-----BEGIN OPENSSH PRIVATE KEY-----", end = "-----END OPENSSH PRIVATE KEY-----"
        guard let b = text.range(of: begin), let e = text.range(of: end), b.upperBound <= e.lowerBound else { throw .notOpenSSHFormat }
        let body = text[b.upperBound..<e.lowerBound].filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: String(body)) else { throw .malformed("bad base64") }
        var r = Reader(bytes: [UInt8](data))
        let magic = Array("openssh-key-v1".utf8) + [0]
        guard r.take(magic.count) == magic else { throw .notOpenSSHFormat }
        let cipher = try r.string(), kdf = try r.string()
        var options = Reader(bytes: try r.bytes())
        guard try r.uint32() == 1 else { throw .malformed("expected exactly one key") }
        _ = try r.bytes()  // public key
        var section = try r.bytes()
        switch (cipher, kdf) {
        case ("none", "none"): break
        case ("aes256-ctr", "bcrypt"):
            guard let passphrase else { throw .encrypted }
            let salt = try options.bytes()
            let rounds = Int(try options.uint32())
            // ssh-keygen uses 16 (-a N raises it); a file asking for billions would hang us.
            guard rounds <= Self.maxBcryptRounds else { throw .malformed("bcrypt rounds \(rounds) exceed \(Self.maxBcryptRounds)") }
            guard section.count % 16 == 0,
                  let keyIV = BcryptPBKDF.derive(passphrase: Array(passphrase.utf8), salt: salt, count: 48, rounds: rounds),
                  let nonce = try? AES._CTR.Nonce(nonceBytes: keyIV[32..<48]),
                  let plain = try? AES._CTR.decrypt(section, using: SymmetricKey(data: keyIV[0..<32]), nonce: nonce)
            else { throw .malformed("bad encryption parameters") }
            section = [UInt8](plain)
        case (_, "bcrypt"): throw .unsupportedCipher(cipher)
        default: throw .malformed("unknown cipher '\(cipher)' or kdf '\(kdf)'")
        }
        var p = Reader(bytes: section)
        guard try p.uint32() == p.uint32() else { throw cipher == "none" ? .malformed("check bytes differ") : .wrongPassphrase }
        let type = try p.string()
        guard type == "ssh-ed25519" else { throw .unsupportedType(type) }
        let pub = try p.bytes(), priv = try p.bytes()
        guard pub.count == 32, priv.count == 64, Array(priv[32...]) == pub else { throw .malformed("bad ed25519 key sizes") }
        guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: priv[0..<32]) else { throw .malformed("bad ed25519 seed") }
        guard Array(key.publicKey.rawRepresentation) == pub else { throw .malformed("public key does not match the private key") }
        return key
    }

    /// Loads a key file, refusing one that others can read (as ssh does); `passphrase` is asked
    /// only when the key is protected.
    public static func load(path: String, passphrase: (() -> String?)? = nil) throws -> NIOSSHPrivateKey {
        var st = stat()
        guard stat(path, &st) == 0 else { throw KeyError.malformed("cannot read \(path): \(String(cString: strerror(errno)))") }
        if st.st_mode & 0o077 != 0 {
            throw KeyError.malformed("permissions \(String(st.st_mode & 0o777, radix: 8)) for '\(path)' are too open (others may read it); chmod 600 it")
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let first: KeyError
        do { return try parse(text) } catch { first = error }
        guard first == .encrypted, let given = passphrase?() else { throw first }
        return try parse(text, passphrase: given)
    }

    /// Big-endian SSH wire reader over a byte array.
    struct Reader {
        var data: [UInt8]
        var offset = 0
        init(bytes: [UInt8]) { data = bytes }

        mutating func take(_ n: Int) -> [UInt8]? {
            guard n >= 0, data.count - offset >= n else { return nil }
            defer { offset += n }
            return Array(data[offset..<(offset + n)])
        }

        mutating func uint32() throws(KeyError) -> UInt32 {
            guard let b = take(4) else { throw .malformed("truncated") }
            return b.reduce(0) { $0 << 8 | UInt32($1) }
        }

        mutating func bytes() throws(KeyError) -> [UInt8] {
            let n = try uint32()
            guard n <= 1 << 20, let b = take(Int(n)) else { throw .malformed("truncated") }
            return b
        }

        mutating func string() throws(KeyError) -> String { String(decoding: try bytes(), as: UTF8.self) }
    }
}
