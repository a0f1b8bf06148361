/// A QNSP certificate (docs/protocol.md §7.7): a CA's ML-DSA-65 signature over a user or
/// host public key, a key id, a serial, principals, a validity window and options. Every
/// field is covered by the signature; decoding checks the encoding is canonical, and
/// ``verify(trustedCAs:principal:now:)`` checks the signature, the window and the principal.
public struct QNSPCertificate: Sendable, Equatable {
    public static let magic: [UInt8] = Array("QNSPCRT1".utf8)
    /// The ML-DSA-65 context of the CA's signature (no other signature in QNSP uses it).
    public static let signatureContext: [UInt8] = Array("qnsp1 certificate".utf8)
    public static let userKeyType = "qnsp-mldsa65-cert"
    public static let hostKeyType = "qnsp-xwing-mldsa65-cert"
    /// Most principals and options one certificate may carry.
    public static let maxPrincipals = 256
    public static let maxOptions = 16

    /// Whose key is certified.
    public enum Kind: UInt8, Sendable {
        case user = 1
        case host = 2
    }

    /// The certified key.
    public enum Subject: Sendable, Equatable {
        case user(UserPublicKey)
        case host(HostPublicKey)

        public var blob: [UInt8] {
            switch self {
            case .user(let k): return k.blob
            case .host(let k): return k.blob
            }
        }

        public var kind: Kind {
            switch self {
            case .user: return .user
            case .host: return .host
            }
        }

        public var fingerprint: String { Fingerprint.sha256(blob) }
    }

    /// Options, all critical: a verifier that does not know one must refuse the certificate.
    public struct Option: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(name: String, value: String = "") {
            self.name = name
            self.value = value
        }

        public static let forceCommand = "force-command"
        public static let sourceAddress = "source-address"
        public static let noPortForwarding = "no-port-forwarding"
        public static let noPTY = "no-pty"
        public static let noAgentForwarding = "no-agent-forwarding"
        /// Names with a value, and names that must have none.
        public static let withValue: Set<String> = [forceCommand, sourceAddress]
        public static let flags: Set<String> = [noPortForwarding, noPTY, noAgentForwarding]
    }

    public var subject: Subject
    public var serial: UInt64
    public var keyID: String
    public var principals: [String]
    /// Unix seconds; valid when `validAfter <= now < validBefore`.
    public var validAfter: UInt64
    public var validBefore: UInt64
    /// Sorted by name, each at most once.
    public var options: [Option]
    public var caKey: SignatureScheme.PublicKey
    public var signature: [UInt8]

    public var kind: Kind { subject.kind }

    /// The fields as given, unchecked and unsigned (``sign(subject:serial:keyID:principals:validAfter:validBefore:options:ca:)`` checks and signs).
    public init(
        subject: Subject,
        serial: UInt64,
        keyID: String,
        principals: [String],
        validAfter: UInt64,
        validBefore: UInt64,
        options: [Option],
        caKey: SignatureScheme.PublicKey,
        signature: [UInt8]
    ) {
        self.subject = subject
        self.serial = serial
        self.keyID = keyID
        self.principals = principals
        self.validAfter = validAfter
        self.validBefore = validBefore
        self.options = options
        self.caKey = caKey
        self.signature = signature
    }

    public func option(_ name: String) -> Option? { options.first { $0.name == name } }

    // MARK: Signing

    /// Builds and signs a certificate with the CA key `ca` (fields are checked first).
    public static func sign(
        subject: Subject,
        serial: UInt64,
        keyID: String,
        principals: [String],
        validAfter: UInt64,
        validBefore: UInt64,
        options: [Option],
        ca: SignatureScheme.PrivateKey
    ) throws(QNSPCryptoError) -> QNSPCertificate {
        var cert = QNSPCertificate(
            subject: subject,
            serial: serial,
            keyID: keyID,
            principals: principals,
            validAfter: validAfter,
            validBefore: validBefore,
            options: options.sorted { $0.name < $1.name },
            caKey: ca.publicKey,
            signature: []
        )
        try cert.checkFields()
        cert.signature = try ca.sign(cert.signedBytes, context: signatureContext)
        return cert
    }

    // MARK: Encoding

    /// Everything before the signature: what the CA signs.
    public var signedBytes: [UInt8] {
        var w = ByteWriter(capacity: 4200 + subject.blob.count)
        w.write(bytes: Self.magic)
        w.write(kind.rawValue)
        w.writeVector16(subject.blob)
        w.write(serial)
        w.writeVector16(Array(keyID.utf8))
        var p = ByteWriter()
        for name in principals { p.writeVector8(Array(name.utf8)) }
        w.writeVector16(p.bytes)
        w.write(validAfter)
        w.write(validBefore)
        var o = ByteWriter()
        for option in options {
            o.writeVector8(Array(option.name.utf8))
            o.writeVector16(Array(option.value.utf8))
        }
        w.writeVector16(o.bytes)
        w.writeVector16(caKey.rawRepresentation)
        return w.bytes
    }

    public var blob: [UInt8] {
        var w = ByteWriter(capacity: signedBytes.count + signature.count + 2)
        w.write(bytes: signedBytes)
        w.writeVector16(signature)
        return w.bytes
    }

    public var keyType: String { kind == .user ? Self.userKeyType : Self.hostKeyType }

    /// `KEY-cert.pub` text: `qnsp-mldsa65-cert <base64> [comment]`.
    public func line(comment: String) -> String {
        let base = keyType + " " + Base64.encode(blob)
        return comment.isEmpty ? base : base + " " + comment
    }

    /// Parses a certificate line (the form `qssh-keygen -s` writes).
    public init(line: String) throws(QNSPCryptoError) {
        let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count >= 2 else { throw .certificateInvalid("expected '<type> <base64> [comment]'") }
        guard let bytes = Base64.decode(parts[1]) else { throw .certificateInvalid("not valid base64") }
        try self.init(blob: bytes)
        guard String(parts[0]) == keyType else {
            throw .certificateInvalid("type '\(parts[0])' does not match the contents (\(keyType))")
        }
    }

    /// Decodes a certificate blob. Only the encoding and field rules are checked here, not
    /// the signature (see ``verify(trustedCAs:principal:now:)``).
    public init(blob bytes: [UInt8]) throws(QNSPCryptoError) {
        var r = ByteReader(bytes)
        do {
            guard try r.readBytes(Self.magic.count, "magic") == Self.magic else {
                throw QNSPCryptoError.certificateInvalid("not a QNSP certificate")
            }
            let kindByte = try r.readUInt8("kind")
            guard let kind = Kind(rawValue: kindByte) else {
                throw QNSPCryptoError.certificateInvalid("unknown certificate kind \(kindByte)")
            }
            let subjectBlob = try r.readVector16("public key")
            subject =
                kind == .user
                ? .user(try UserPublicKey(blob: subjectBlob)) : .host(try HostPublicKey(blob: subjectBlob))
            serial = try r.readUInt64("serial")
            keyID = try Self.text(try r.readVector16("key id"), "key id")
            var p = ByteReader(try r.readVector16("principals"))
            var names: [String] = []
            while !p.isAtEnd {
                names.append(try Self.text(try p.readVector8("principal"), "principal"))
                guard names.count <= Self.maxPrincipals else {
                    throw QNSPCryptoError.certificateInvalid("more than \(Self.maxPrincipals) principals")
                }
            }
            principals = names
            validAfter = try r.readUInt64("valid after")
            validBefore = try r.readUInt64("valid before")
            var o = ByteReader(try r.readVector16("options"))
            var opts: [Option] = []
            while !o.isAtEnd {
                let name = try Self.text(try o.readVector8("option name"), "option name")
                let value = try Self.text(try o.readVector16("option value"), "option value")
                opts.append(Option(name: name, value: value))
                guard opts.count <= Self.maxOptions else {
                    throw QNSPCryptoError.certificateInvalid("more than \(Self.maxOptions) options")
                }
            }
            options = opts
            caKey = try SignatureScheme.PublicKey(rawRepresentation: try r.readVector16("CA key"))
            signature = try r.readVector16("signature")
            guard r.isAtEnd else { throw QNSPCryptoError.certificateInvalid("trailing bytes after the signature") }
        } catch let e as QNSPCryptoError {
            if case .certificateInvalid = e { throw e }
            throw .certificateInvalid("\(e)")
        } catch let t as ByteReader.Truncated {
            throw .certificateInvalid("truncated at \(t.field)")
        } catch {
            throw .certificateInvalid("\(error)")
        }
        try checkFields()
    }

    private static func text(_ bytes: [UInt8], _ what: String) throws(QNSPCryptoError) -> String {
        guard let s = String(validating: bytes, as: UTF8.self), !PrintableText.containsControlCharacters(s) else {
            throw .certificateInvalid("\(what) is not printable UTF-8")
        }
        return s
    }

    /// The field rules both signing and decoding enforce.
    private func checkFields() throws(QNSPCryptoError) {
        guard !keyID.isEmpty, keyID.utf8.count <= 1024 else {
            throw .certificateInvalid("the key id must be 1 to 1024 bytes")
        }
        guard !principals.isEmpty else { throw .certificateInvalid("a certificate needs at least one principal") }
        guard principals.count <= Self.maxPrincipals else {
            throw .certificateInvalid("more than \(Self.maxPrincipals) principals")
        }
        for p in principals {
            guard !p.isEmpty, p.utf8.count <= 255, !p.contains(","), !p.contains(" ") else {
                throw .certificateInvalid("principal '\(p)' is empty, too long, or has a comma or space")
            }
        }
        guard validAfter < validBefore else { throw .certificateInvalid("the validity window is empty") }
        guard options.count <= Self.maxOptions else {
            throw .certificateInvalid("more than \(Self.maxOptions) options")
        }
        for (i, option) in options.enumerated() {
            if i > 0 {
                guard options[i - 1].name < option.name else {
                    throw .certificateInvalid("options are not sorted or repeat '\(option.name)'")
                }
            }
            if Option.withValue.contains(option.name) {
                guard !option.value.isEmpty, option.value.utf8.count <= 4096 else {
                    throw .certificateInvalid("option \(option.name) needs a value")
                }
            } else if Option.flags.contains(option.name) {
                guard option.value.isEmpty else { throw .certificateInvalid("option \(option.name) takes no value") }
            } else {
                throw .certificateInvalid("unknown option '\(option.name)'")
            }
        }
        if kind == .host {
            guard options.isEmpty else { throw .certificateInvalid("host certificates carry no options") }
        }
    }

    // MARK: Verification

    /// Why a certificate is not accepted.
    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        case untrustedCA(String)
        case badSignature
        case notYetValid(validAfter: UInt64)
        case expired(validBefore: UInt64)
        case wrongPrincipal(String)
        case wrongKind

        public var description: String {
            switch self {
            case .untrustedCA(let fp): return "certificate signed by an untrusted CA (\(fp))"
            case .badSignature: return "certificate signature does not verify"
            case .notYetValid(let t): return "certificate is not yet valid (valid after \(t))"
            case .expired(let t): return "certificate has expired (valid before \(t))"
            case .wrongPrincipal(let p): return "certificate is not valid for '\(p)'"
            case .wrongKind: return "certificate is of the wrong kind"
            }
        }
    }

    /// Checks the CA is trusted, its signature, the window at `now` and that `principal` is listed.
    public func verify(
        trustedCAs: [SignatureScheme.PublicKey],
        kind expected: Kind,
        principal: String,
        now: UInt64
    ) throws(Refusal) {
        guard kind == expected else { throw .wrongKind }
        guard trustedCAs.contains(caKey) else { throw .untrustedCA(Fingerprint.sha256(caKey.rawRepresentation)) }
        guard caKey.isValidSignature(signature, for: signedBytes, context: Self.signatureContext) else {
            throw .badSignature
        }
        guard now >= validAfter else { throw .notYetValid(validAfter: validAfter) }
        guard now < validBefore else { throw .expired(validBefore: validBefore) }
        guard principals.contains(principal) else { throw .wrongPrincipal(principal) }
    }
}
