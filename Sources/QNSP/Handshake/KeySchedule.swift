import QNSPCrypto

/// QNSP version 1 key schedule. Every output is HKDF-Expand-Label of a secret
/// with a distinct label and a transcript hash as context (docs/protocol.md, "Key schedule").
///
///     es  = Extract(salt = "qnsp1 early", ikm = ss_static)
///     hs  = Extract(salt = ExpandLabel(es, "derived", H(CH)), ikm = ss_ephemeral)
///     ms  = Extract(salt = ExpandLabel(hs, "derived", H(CH..SH)), ikm = 0^32)
public struct KeySchedule: Sendable {
    public static let hashSize = 32

    public static func transcriptHash(_ transcript: [UInt8]) -> [UInt8] { KeyDerivation.sha256(transcript) }

    /// Key and nonce sealing one handshake payload (client or server hello).
    public struct PayloadKey: Sendable, Equatable {
        public let key: [UInt8]
        public let nonce: [UInt8]
    }

    public private(set) var earlySecret: [UInt8]
    public private(set) var handshakeSecret: [UInt8]?
    public private(set) var masterSecret: [UInt8]?

    /// Starts from the static-KEM shared secret.
    public init(staticSharedSecret: [UInt8]) {
        earlySecret = KeyDerivation.extract(salt: Array("qnsp1 early".utf8), inputKeyMaterial: staticSharedSecret)
    }

    /// Key for the client hello payload; `context` = H(transcript before CH || CH prefix).
    public func clientHelloKey(context: [UInt8]) -> PayloadKey {
        PayloadKey(key: KeyDerivation.expandLabel(secret: earlySecret, label: "ch key", context: context, length: 32),
                   nonce: KeyDerivation.expandLabel(secret: earlySecret, label: "ch iv", context: context, length: 12))
    }

    /// Mixes in the ephemeral-KEM shared secret; `clientHelloHash` = H(transcript through CH).
    public mutating func mixEphemeral(_ ephemeralSharedSecret: [UInt8], clientHelloHash: [UInt8]) {
        let salt = KeyDerivation.expandLabel(secret: earlySecret, label: "derived", context: clientHelloHash, length: 32)
        handshakeSecret = KeyDerivation.extract(salt: salt, inputKeyMaterial: ephemeralSharedSecret)
    }

    /// Key for the server hello payload; `context` = H(transcript through CH || SH prefix).
    public func serverHelloKey(context: [UInt8]) -> PayloadKey {
        let hs = handshakeSecret ?? []
        return PayloadKey(key: KeyDerivation.expandLabel(secret: hs, label: "sh key", context: context, length: 32),
                          nonce: KeyDerivation.expandLabel(secret: hs, label: "sh iv", context: context, length: 12))
    }

    /// Handshake traffic secrets; `serverHelloHash` = H(transcript through SH).
    public func handshakeTrafficSecrets(serverHelloHash: [UInt8]) -> (client: TrafficSecret, server: TrafficSecret) {
        let hs = handshakeSecret ?? []
        return (TrafficSecret(secret: KeyDerivation.expandLabel(secret: hs, label: "c hs traffic", context: serverHelloHash, length: 32)),
                TrafficSecret(secret: KeyDerivation.expandLabel(secret: hs, label: "s hs traffic", context: serverHelloHash, length: 32)))
    }

    /// Derives the master secret once the server hello is in the transcript.
    public mutating func deriveMaster(serverHelloHash: [UInt8]) {
        let salt = KeyDerivation.expandLabel(secret: handshakeSecret ?? [], label: "derived", context: serverHelloHash, length: 32)
        masterSecret = KeyDerivation.extract(salt: salt, inputKeyMaterial: [UInt8](repeating: 0, count: 32))
    }

    /// Application traffic secrets and the exporter; `clientAuthHash` = H(transcript through ClientAuth).
    public func applicationSecrets(clientAuthHash: [UInt8]) -> (client: TrafficSecret, server: TrafficSecret, exporter: [UInt8]) {
        let ms = masterSecret ?? []
        return (TrafficSecret(secret: KeyDerivation.expandLabel(secret: ms, label: "c ap traffic", context: clientAuthHash, length: 32)),
                TrafficSecret(secret: KeyDerivation.expandLabel(secret: ms, label: "s ap traffic", context: clientAuthHash, length: 32)),
                KeyDerivation.expandLabel(secret: ms, label: "exporter", context: clientAuthHash, length: 32))
    }

    /// What the client signs: "qnsp1 client auth" context, message = H(through SH) || ClientAuth signed part.
    public static let clientAuthContext: [UInt8] = Array("qnsp1 client auth".utf8)
    /// What the server signs on first contact: message = H(transcript through the host key request) || host key blob.
    public static let hostAnnouncementContext: [UInt8] = Array("qnsp1 host key".utf8)

    /// Wipes secrets that are no longer needed.
    public mutating func wipe() {
        ConstantTime.wipe(&earlySecret)
        if var h = handshakeSecret { ConstantTime.wipe(&h); handshakeSecret = nil }
        if var m = masterSecret { ConstantTime.wipe(&m); masterSecret = nil }
    }
}
