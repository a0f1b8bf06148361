import QNSPCrypto

/// Codecs for the bodies of handshake messages (see docs/protocol.md, "Handshake messages").
/// Every decoder checks every length and rejects trailing bytes.
public enum HandshakeMessages {
    /// C→S, clear: opens a known-host handshake.
    public struct ClientHello: Sendable, Equatable {
        public var versions: [UInt8]
        public var ciphers: [UInt8]
        public var serverKeyID: [UInt8]
        /// The client's clock (Unix seconds), or the server's time from a Retry plus the time since.
        public var time: UInt64
        /// Empty, or the cookie of the server's Retry.
        public var cookie: [UInt8]
        public var ephemeralKey: [UInt8]
        public var encapsulation: [UInt8]
        public var sealedPayload: [UInt8]

        /// Longest cookie a client hello may carry.
        public static let maxCookieSize = 64

        /// The body bytes before the sealed payload (bound into the payload key).
        public var prefix: [UInt8] {
            var w = ByteWriter(capacity: 2440)
            w.writeVector8(versions)
            w.writeVector8(ciphers)
            w.write(bytes: serverKeyID)
            w.write(time)
            w.writeVector8(cookie)
            w.write(bytes: ephemeralKey)
            w.write(bytes: encapsulation)
            return w.bytes
        }

        public func encoded() -> [UInt8] {
            var w = ByteWriter(capacity: 2640)
            w.write(bytes: prefix)
            w.writeVector16(sealedPayload)
            return w.bytes
        }

        public init(
            versions: [UInt8], ciphers: [UInt8], serverKeyID: [UInt8], time: UInt64, cookie: [UInt8] = [],
            ephemeralKey: [UInt8], encapsulation: [UInt8], sealedPayload: [UInt8]
        ) {
            self.versions = versions
            self.ciphers = ciphers
            self.serverKeyID = serverKeyID
            self.time = time
            self.cookie = cookie
            self.ephemeralKey = ephemeralKey
            self.encapsulation = encapsulation
            self.sealedPayload = sealedPayload
        }

        public init(decoding body: [UInt8]) throws(QNSPError) {
            var r = ByteReader(body)
            do {
                versions = try r.readVector8("versions")
                ciphers = try r.readVector8("ciphers")
                serverKeyID = try r.readBytes(HostPublicKey.keyIDSize, "server key id")
                time = try r.readUInt64("time")
                cookie = try r.readVector8("cookie")
                ephemeralKey = try r.readBytes(HybridKEM.publicKeySize, "ephemeral key")
                encapsulation = try r.readBytes(HybridKEM.encapsulationSize, "encapsulation")
                sealedPayload = try r.readVector16("sealed payload")
            } catch { throw .malformedHandshake("client hello truncated at \(error.field)") }
            guard r.isAtEnd else { throw .malformedHandshake("client hello has trailing bytes") }
            guard !versions.isEmpty, !ciphers.isEmpty else { throw .malformedHandshake("client hello lists no versions or ciphers") }
            guard cookie.count <= Self.maxCookieSize else { throw .malformedHandshake("client hello cookie of \(cookie.count) bytes") }
        }
    }

    /// S→C, clear: instead of a server hello, asks the client to send its hello again with this
    /// cookie (and, if its clock is off, with the server's time). The server keeps no state for it.
    public struct Retry: Sendable, Equatable {
        public var serverTime: UInt64
        public var cookie: [UInt8]

        public init(serverTime: UInt64, cookie: [UInt8]) {
            self.serverTime = serverTime
            self.cookie = cookie
        }

        public func encoded() -> [UInt8] {
            var w = ByteWriter()
            w.write(serverTime)
            w.writeVector8(cookie)
            return w.bytes
        }

        public init(decoding body: [UInt8]) throws(QNSPError) {
            var r = ByteReader(body)
            do {
                serverTime = try r.readUInt64("server time")
                cookie = try r.readVector8("cookie")
            } catch { throw .malformedHandshake("retry truncated at \(error.field)") }
            guard r.isAtEnd else { throw .malformedHandshake("retry has trailing bytes") }
            guard !cookie.isEmpty, cookie.count <= ClientHello.maxCookieSize else {
                throw .malformedHandshake("retry cookie of \(cookie.count) bytes")
            }
        }
    }

    /// The encrypted part of the client hello.
    public struct ClientPayload: Sendable, Equatable {
        public var service: String
        public var extensions: [UInt8]

        public init(service: String, extensions: [UInt8] = []) { self.service = service; self.extensions = extensions }

        public func encoded() -> [UInt8] {
            var w = ByteWriter()
            w.writeVector8(Array(service.utf8.prefix(255)))
            w.writeVector16(extensions)
            return w.bytes
        }

        public init(decoding body: [UInt8]) throws(QNSPError) {
            var r = ByteReader(body)
            do {
                let s = try r.readVector8("service")
                guard let str = String(validating: s, as: UTF8.self) else { throw QNSPError.malformedHandshake("service is not UTF-8") }
                service = str
                extensions = try r.readVector16("extensions")
            } catch let e as QNSPError { throw e } catch { throw .malformedHandshake("client payload truncated") }
            guard r.isAtEnd else { throw .malformedHandshake("client payload has trailing bytes") }
        }
    }

    /// S→C, clear: the server's encapsulation to the client's ephemeral key and its sealed payload.
    public struct ServerHello: Sendable, Equatable {
        public var encapsulation: [UInt8]
        public var sealedPayload: [UInt8]

        public init(encapsulation: [UInt8], sealedPayload: [UInt8]) { self.encapsulation = encapsulation; self.sealedPayload = sealedPayload }

        public func encoded() -> [UInt8] {
            var w = ByteWriter(capacity: 1300)
            w.write(bytes: encapsulation)
            w.writeVector16(sealedPayload)
            return w.bytes
        }

        public init(decoding body: [UInt8]) throws(QNSPError) {
            var r = ByteReader(body)
            do {
                encapsulation = try r.readBytes(HybridKEM.encapsulationSize, "encapsulation")
                sealedPayload = try r.readVector16("sealed payload")
            } catch { throw .malformedHandshake("server hello truncated at \(error.field)") }
            guard r.isAtEnd else { throw .malformedHandshake("server hello has trailing bytes") }
        }
    }

    /// The encrypted part of the server hello: what the server chose.
    public struct ServerPayload: Sendable, Equatable {
        public var version: UInt8
        public var cipher: UInt8
        public var extensions: [UInt8]

        public init(version: UInt8, cipher: UInt8, extensions: [UInt8] = []) { self.version = version; self.cipher = cipher; self.extensions = extensions }

        public func encoded() -> [UInt8] {
            var w = ByteWriter()
            w.write(version); w.write(cipher); w.writeVector16(extensions)
            return w.bytes
        }

        public init(decoding body: [UInt8]) throws(QNSPError) {
            var r = ByteReader(body)
            do {
                version = try r.readUInt8("version")
                cipher = try r.readUInt8("cipher")
                extensions = try r.readVector16("extensions")
            } catch { throw .malformedHandshake("server payload truncated at \(error.field)") }
            guard r.isAtEnd else { throw .malformedHandshake("server payload has trailing bytes") }
        }
    }

    /// C→S, clear: first contact, asks for the server's host keys. Padded so that the request is
    /// at least a third of the announcement it asks for (no more than 3x amplification).
    public struct HostKeyRequest: Sendable, Equatable {
        public var nonce: [UInt8]
        public var versions: [UInt8]
        /// Number of zero bytes of padding.
        public var paddingCount: Int

        /// The smallest record (with its cell padding) a server answers with an announcement.
        public static func minimumRecordSize(cellSize: Int) -> Int {
            (HostKeyAnnouncement.recordSize(cellSize: cellSize) + 2) / 3
        }

        public init(nonce: [UInt8], versions: [UInt8], paddingCount: Int = 0) {
            self.nonce = nonce
            self.versions = versions
            self.paddingCount = paddingCount
        }

        /// The smallest record a server answers with an announcement that carries its host
        /// certificate: a third of the largest announcement record (docs/protocol.md §7.11).
        public static func minimumRecordSizeForCertificate(cellSize: Int) -> Int {
            (HostKeyAnnouncement.maxRecordSize(cellSize: cellSize) + 2) / 3
        }

        /// A request padded to the minimum size for `cellSize`; `certificate` pads it so that the
        /// server may answer with its host certificate.
        public static func padded(nonce: [UInt8], versions: [UInt8], cellSize: Int, certificate: Bool = false) -> HostKeyRequest {
            let bare = ClearRecord.headerSize + nonce.count + 1 + versions.count + 2
            let minimum = certificate ? minimumRecordSizeForCertificate(cellSize: cellSize) : minimumRecordSize(cellSize: cellSize)
            return HostKeyRequest(nonce: nonce, versions: versions, paddingCount: max(0, minimum - bare))
        }

        public func encoded() -> [UInt8] {
            var w = ByteWriter()
            w.write(bytes: nonce)
            w.writeVector8(versions)
            w.writeVector16([UInt8](repeating: 0, count: paddingCount))
            return w.bytes
        }

        public init(decoding body: [UInt8]) throws(QNSPError) {
            var r = ByteReader(body)
            let padding: [UInt8]
            do {
                nonce = try r.readBytes(32, "nonce")
                versions = try r.readVector8("versions")
                padding = try r.readVector16("padding")
            } catch { throw .malformedHandshake("host key request truncated at \(error.field)") }
            guard r.isAtEnd else { throw .malformedHandshake("host key request has trailing bytes") }
            guard padding.allSatisfy({ $0 == 0 }) else { throw .nonZeroPadding }
            paddingCount = padding.count
        }
    }

    /// S→C, clear: the host public keys, self-signed with the host's ML-DSA key (a signature the
    /// server computes once, not per request: docs/protocol.md 4.4), and the host certificate
    /// when the server has one and the request was large enough to carry it (§7.11).
    public struct HostKeyAnnouncement: Sendable, Equatable {
        public var hostKeyBlob: [UInt8]
        public var signature: [UInt8]
        /// A host certificate blob (``QNSPCertificate``), or nil.
        public var certificate: [UInt8]?

        /// The largest announcement body: the handshake message limit.
        public static let maxBodySize = 16384

        /// The message the signature covers: a fixed label and the blob.
        public static func signedMessage(blob: [UInt8]) -> [UInt8] { Array("qnsp1 host key announcement".utf8) + blob }

        /// Size of an announcement record of today's host key type, with its cell padding.
        public static func recordSize(cellSize: Int) -> Int {
            ClearRecord.paddedSize(bodyLength: 2 + HostPublicKey.blobSize + 2 + SignatureScheme.signatureSize, cellSize: cellSize)
        }

        /// Size of the largest announcement record (a body of ``maxBodySize``), with its cell padding.
        public static func maxRecordSize(cellSize: Int) -> Int {
            ClearRecord.paddedSize(bodyLength: maxBodySize, cellSize: cellSize)
        }

        /// The largest host certificate an announcement can carry.
        public static var maxCertificateSize: Int { maxBodySize - (2 + HostPublicKey.blobSize + 2 + SignatureScheme.signatureSize + 2) }

        public init(hostKeyBlob: [UInt8], signature: [UInt8], certificate: [UInt8]? = nil) {
            self.hostKeyBlob = hostKeyBlob
            self.signature = signature
            self.certificate = certificate
        }

        public func encoded() -> [UInt8] {
            var w = ByteWriter(capacity: 6600 + (certificate.map { $0.count + 2 } ?? 0))
            w.writeVector16(hostKeyBlob)
            w.writeVector16(signature)
            if let certificate { w.writeVector16(certificate) }
            return w.bytes
        }

        public init(decoding body: [UInt8]) throws(QNSPError) {
            var r = ByteReader(body)
            do {
                hostKeyBlob = try r.readVector16("host key")
                signature = try r.readVector16("signature")
                certificate = r.isAtEnd ? nil : try r.readVector16("host certificate")
            } catch { throw .malformedHandshake("host key announcement truncated at \(error.field)") }
            guard r.isAtEnd else { throw .malformedHandshake("host key announcement has trailing bytes") }
            if let certificate, certificate.isEmpty { throw .malformedHandshake("host key announcement with an empty certificate") }
        }
    }

    /// Either direction, clear: refusal before keys exist. Unauthenticated, so advisory only:
    /// a receiver closes the connection and never changes what it offers because of it.
    public struct Reject: Sendable, Equatable {
        public enum Code: UInt8, Sendable {
            case unsupportedVersion = 1
            case unknownHostKey = 2
            case undecryptable = 3
            case malformed = 4
            case unsupportedCellSize = 5
            case noCommonCipher = 6
            case other = 7
            case replayed = 8
            case busy = 9
        }
        public var code: UInt8
        public var versions: [UInt8]
        /// The peer's text, with control characters escaped on decoding (``PrintableText``).
        public var message: String

        public init(code: Code, versions: [UInt8] = QNSPConfiguration.supportedVersions, message: String) {
            self.code = code.rawValue
            self.versions = versions
            self.message = message
        }

        public func encoded() -> [UInt8] {
            var w = ByteWriter()
            w.write(code)
            w.writeVector8(versions)
            w.writeVector16(Array(message.utf8.prefix(1024)))
            return w.bytes
        }

        public init(decoding body: [UInt8]) throws(QNSPError) {
            var r = ByteReader(body)
            do {
                code = try r.readUInt8("code")
                versions = try r.readVector8("versions")
                message = PrintableText.escaped(utf8: try r.readVector16("message"))
            } catch { throw .malformedHandshake("reject truncated at \(error.field)") }
            guard r.isAtEnd else { throw .malformedHandshake("reject has trailing bytes") }
        }
    }

    /// Type bytes of handshake messages carried inside encrypted `.handshake` cells.
    public enum EncryptedType: UInt8, Sendable {
        case clientAuth = 0x21
        case authResult = 0x22
    }

    /// C→S, encrypted: the user's name, ML-DSA-65 public key and signature over the transcript.
    public struct ClientAuth: Sendable, Equatable {
        public var username: String
        public var publicKey: [UInt8]
        public var signature: [UInt8]

        public init(username: String, publicKey: [UInt8], signature: [UInt8]) { self.username = username; self.publicKey = publicKey; self.signature = signature }

        /// The bytes the signature covers besides the transcript hash.
        public var signedPart: [UInt8] {
            var w = ByteWriter(capacity: 2100); w.writeVector8(Array(username.utf8)); w.writeVector16(publicKey); return w.bytes
        }

        public func encoded() -> [UInt8] {
            var w = ByteWriter(capacity: 5400); w.write(bytes: signedPart); w.writeVector16(signature); return w.bytes
        }

        public init(decoding body: [UInt8]) throws(QNSPError) {
            var r = ByteReader(body)
            do {
                let u = try r.readVector8("username")
                guard let name = String(validating: u, as: UTF8.self), !name.isEmpty else { throw QNSPError.malformedHandshake("user name is empty or not UTF-8") }
                guard !PrintableText.containsControlCharacters(name) else {
                    throw QNSPError.malformedHandshake("user name contains control characters")
                }
                username = name
                publicKey = try r.readVector16("public key")
                signature = try r.readVector16("signature")
            } catch let e as QNSPError { throw e } catch { throw .malformedHandshake("client auth truncated") }
            guard r.isAtEnd else { throw .malformedHandshake("client auth has trailing bytes") }
        }
    }

    /// S→C, encrypted: whether the user was accepted.
    public struct AuthResult: Sendable, Equatable {
        public var accepted: Bool
        public var message: String

        public init(accepted: Bool, message: String) { self.accepted = accepted; self.message = message }

        public func encoded() -> [UInt8] {
            var w = ByteWriter(); w.write(UInt8(accepted ? 0 : 1)); w.writeVector16(Array(message.utf8.prefix(1024))); return w.bytes
        }

        public init(decoding body: [UInt8]) throws(QNSPError) {
            var r = ByteReader(body)
            do {
                let status = try r.readUInt8("status")
                guard status <= 1 else { throw QNSPError.malformedHandshake("auth result status \(status)") }
                accepted = status == 0
                message = PrintableText.escaped(utf8: try r.readVector16("message"))
            } catch let e as QNSPError { throw e } catch { throw .malformedHandshake("auth result truncated") }
            guard r.isAtEnd else { throw .malformedHandshake("auth result has trailing bytes") }
        }
    }
}
