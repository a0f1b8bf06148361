import CryptoExtras

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The on-disk private key format (see docs/keys.md): an armored, versioned binary
/// record holding the public key in clear (so fingerprints need no passphrase) and
/// the 32-byte seeds either in clear or sealed with AES-256-GCM under a scrypt key.
public enum PrivateKeyFile {
    public static let magic: [UInt8] = Array("QNSPKEY1".utf8)
    public static let beginLine = "-----BEGIN QNSP PRIVATE KEY-----"
    public static let endLine = "-----END QNSP PRIVATE KEY-----"

    /// What a key file holds.
    public enum Kind: UInt8, Sendable {
        case user = 1
        case host = 2
        public var name: String { self == .user ? "user (ML-DSA-65)" : "host (X-Wing + ML-DSA-65)" }
    }

    /// Either kind of key pair.
    public enum Contents: Sendable {
        case user(UserKeyPair)
        case host(HostKeyPair)

        public var kind: Kind {
            if case .user = self { return .user }
            return .host
        }
        public var comment: String {
            switch self {
            case .user(let k): return k.comment
            case .host(let k): return k.comment
            }
        }
        public var publicKeyLine: PublicKeyLine {
            switch self {
            case .user(let k): return .user(k.publicKey, comment: k.comment)
            case .host(let k): return .host(k.publicKey, comment: k.comment)
            }
        }
    }

    /// scrypt cost for passphrase protection. logN 17, r 8 = 128 MiB of memory.
    public struct ScryptParameters: Sendable, Equatable {
        public var logN: UInt8
        public var r: UInt8
        public var p: UInt8
        public static let `default` = ScryptParameters(logN: 17, r: 8, p: 1)
        /// Files asking for more than this (1 GiB) are refused rather than obeyed.
        public static let maxLogN: UInt8 = 20
        public init(logN: UInt8, r: UInt8, p: UInt8) { self.logN = logN; self.r = r; self.p = p }
        var memoryBytes: Int { 128 * Int(r) * (1 << Int(logN)) }
    }

    // MARK: Encoding

    public static func encode(
        _ contents: Contents, passphrase: String? = nil, scrypt: ScryptParameters = .default,
        random: SecureRandom = SecureRandom()
    ) throws(QNSPCryptoError) -> String {
        var w = ByteWriter(capacity: 4096)
        w.write(bytes: magic)
        w.write(contents.kind.rawValue)
        var seeds: [UInt8]
        let publicBlob: [UInt8]
        switch contents {
        case .user(let k):
            seeds = k.signingKey.seed
            publicBlob = k.publicKey.blob
        case .host(let k):
            seeds = k.kemKey.seed + k.signingKey.seed
            publicBlob = k.publicKey.blob
        }
        defer { ConstantTime.wipe(&seeds) }
        let secret: [UInt8]
        if let passphrase, !passphrase.isEmpty {
            let salt = try random.bytes(16)
            let nonce = try random.bytes(12)
            w.write(UInt8(1))
            w.write(scrypt.logN); w.write(scrypt.r); w.write(scrypt.p)
            w.write(bytes: salt); w.write(bytes: nonce)
            w.writeVector16(Array(contents.comment.utf8))
            w.writeVector16(publicBlob)
            var key = try deriveKey(passphrase: passphrase, salt: salt, parameters: scrypt)
            defer { ConstantTime.wipe(&key) }
            secret = try AEADCipher(algorithm: .aes256GCM, key: key, forcePortable: true)
                .seal(nonce: nonce, plaintext: seeds, additionalData: w.bytes)
        } else {
            w.write(UInt8(0))
            w.writeVector16(Array(contents.comment.utf8))
            w.writeVector16(publicBlob)
            secret = seeds
        }
        w.writeVector16(secret)
        return armor(w.bytes)
    }

    // MARK: Decoding

    /// What can be read without the passphrase.
    public struct Header: Sendable {
        public let kind: Kind
        public let isEncrypted: Bool
        public let comment: String
        public let publicKeyLine: PublicKeyLine
    }

    public static func readHeader(_ text: String) throws(QNSPCryptoError) -> Header {
        let parsed = try parse(text)
        let line: PublicKeyLine
        switch parsed.kind {
        case .user: line = .user(try UserPublicKey(blob: parsed.publicBlob), comment: parsed.comment)
        case .host: line = .host(try HostPublicKey(blob: parsed.publicBlob), comment: parsed.comment)
        }
        return Header(kind: parsed.kind, isEncrypted: parsed.scrypt != nil, comment: parsed.comment, publicKeyLine: line)
    }

    public static func decode(_ text: String, passphrase: String? = nil) throws(QNSPCryptoError) -> Contents {
        let p = try parse(text)
        var seeds: [UInt8]
        if let params = p.scrypt {
            guard let passphrase, !passphrase.isEmpty else { throw .passphraseRequired }
            var key = try deriveKey(passphrase: passphrase, salt: p.salt, parameters: params)
            defer { ConstantTime.wipe(&key) }
            do {
                seeds = try AEADCipher(algorithm: .aes256GCM, key: key, forcePortable: true)
                    .open(nonce: p.nonce, sealed: p.secret, additionalData: p.authenticated)
            } catch {
                throw .wrongPassphrase
            }
        } else {
            seeds = p.secret
        }
        defer { ConstantTime.wipe(&seeds) }
        let contents: Contents
        switch p.kind {
        case .user:
            guard seeds.count == SignatureScheme.seedSize else { throw .keyFileMalformed("secret section has the wrong size") }
            contents = .user(UserKeyPair(signingKey: try .init(seed: seeds), comment: p.comment))
        case .host:
            guard seeds.count == HybridKEM.seedSize + SignatureScheme.seedSize else {
                throw .keyFileMalformed("secret section has the wrong size")
            }
            contents = .host(HostKeyPair(
                kemKey: try .init(seed: Array(seeds[0..<HybridKEM.seedSize])),
                signingKey: try .init(seed: Array(seeds[HybridKEM.seedSize...])), comment: p.comment))
        }
        guard ConstantTime.equals(contents.publicKeyLine.blob, p.publicBlob) else {
            throw .keyFileMalformed("public key does not match the private key")
        }
        return contents
    }

    private struct Parsed {
        var kind: Kind
        var scrypt: ScryptParameters?
        var salt: [UInt8] = []
        var nonce: [UInt8] = []
        var comment: String
        var publicBlob: [UInt8]
        var authenticated: [UInt8]
        var secret: [UInt8]
    }

    private static func parse(_ text: String) throws(QNSPCryptoError) -> Parsed {
        let bytes = try dearmor(text)
        var r = ByteReader(bytes)
        do {
            guard try r.readBytes(magic.count, "magic") == magic else { throw QNSPCryptoError.keyFileMalformed("not a QNSP key (bad magic)") }
            let kindByte = try r.readUInt8("kind")
            guard let kind = Kind(rawValue: kindByte) else { throw QNSPCryptoError.keyFileMalformed("unknown key kind \(kindByte)") }
            let protection = try r.readUInt8("protection")
            var scrypt: ScryptParameters?
            var salt: [UInt8] = [], nonce: [UInt8] = []
            switch protection {
            case 0: break
            case 1:
                let params = ScryptParameters(logN: try r.readUInt8("scrypt logN"), r: try r.readUInt8("scrypt r"), p: try r.readUInt8("scrypt p"))
                guard params.logN >= 10, params.logN <= ScryptParameters.maxLogN, params.r >= 1, params.r <= 32, params.p >= 1, params.p <= 16 else {
                    throw QNSPCryptoError.keyFileMalformed("scrypt parameters out of range (logN \(params.logN), r \(params.r), p \(params.p))")
                }
                scrypt = params
                salt = try r.readBytes(16, "salt")
                nonce = try r.readBytes(12, "nonce")
            default: throw QNSPCryptoError.keyFileMalformed("unknown protection scheme \(protection)")
            }
            guard let comment = String(validating: try r.readVector16("comment"), as: UTF8.self) else {
                throw QNSPCryptoError.keyFileMalformed("comment is not UTF-8")
            }
            let publicBlob = try r.readVector16("public key")
            let authenticated = Array(bytes[0..<r.offset])
            let secret = try r.readVector16("secret")
            guard r.isAtEnd else { throw QNSPCryptoError.keyFileMalformed("trailing bytes after the secret section") }
            return Parsed(kind: kind, scrypt: scrypt, salt: salt, nonce: nonce, comment: comment,
                          publicBlob: publicBlob, authenticated: authenticated, secret: secret)
        } catch let e as QNSPCryptoError {
            throw e
        } catch let t as ByteReader.Truncated {
            throw .keyFileMalformed("truncated at \(t.field)")
        } catch {
            throw .keyFileMalformed("\(error)")
        }
    }

    static func deriveKey(passphrase: String, salt: [UInt8], parameters: ScryptParameters) throws(QNSPCryptoError) -> [UInt8] {
        do {
            let key = try KDF.Scrypt.deriveKey(
                from: Array(passphrase.utf8), salt: salt, outputByteCount: 32,
                rounds: 1 << Int(parameters.logN), blockSize: Int(parameters.r), parallelism: Int(parameters.p),
                maxMemory: parameters.memoryBytes * Int(parameters.p) + (1 << 20))
            return key.withUnsafeBytes { Array($0) }
        } catch {
            throw .keyFileMalformed("scrypt failed: \(error)")
        }
    }

    // MARK: Armor

    static func armor(_ bytes: [UInt8]) -> String {
        let b64 = Base64.encode(bytes)
        var lines = [beginLine]
        var i = b64.startIndex
        while i < b64.endIndex {
            let j = b64.index(i, offsetBy: 64, limitedBy: b64.endIndex) ?? b64.endIndex
            lines.append(String(b64[i..<j]))
            i = j
        }
        lines.append(endLine)
        return lines.joined(separator: "\n") + "\n"
    }

    static func dearmor(_ text: String) throws(QNSPCryptoError) -> [UInt8] {
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map { $0.trimmedWhitespace() }
            .filter { !$0.isEmpty }
        guard let first = lines.firstIndex(of: beginLine), let last = lines.lastIndex(of: endLine), first < last else {
            throw .keyFileMalformed("missing '\(beginLine)' / '\(endLine)' lines")
        }
        let body = lines[(first + 1)..<last].joined()
        guard body.count < 1 << 16, let bytes = Base64.decode(body) else { throw .keyFileMalformed("body is not valid base64") }
        return bytes
    }
}
