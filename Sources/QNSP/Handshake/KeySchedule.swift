import QNSPCrypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// QNSP version 1 key schedule. Every output is HKDF-Expand-Label of a secret
/// with a distinct label and a transcript hash as context (docs/protocol.md, "Key schedule").
///
///     es  = Extract(salt = "qnsp1 early", ikm = ss_static)
///     hs  = Extract(salt = ExpandLabel(es, "derived", H(CH)), ikm = ss_ephemeral)
///     ms  = Extract(salt = ExpandLabel(hs, "derived", H(CH..SH)), ikm = 0^32)
///
/// The secrets are ``SecretBytes``: copies of a schedule share them, so ``wipe()`` clears the
/// one set of bytes every copy refers to.
public struct KeySchedule: Sendable {
    public static let hashSize = 32

    public static func transcriptHash(_ transcript: [UInt8]) -> [UInt8] { KeyDerivation.sha256(transcript) }

    /// Key and nonce sealing one handshake payload (client or server hello).
    public struct PayloadKey: Sendable, Equatable {
        public let key: SecretBytes
        public let nonce: [UInt8]
    }

    public private(set) var earlySecret: SecretBytes
    public private(set) var handshakeSecret: SecretBytes?
    public private(set) var masterSecret: SecretBytes?

    /// Starts from the static-KEM shared secret.
    public init(staticSharedSecret: some ContiguousBytes) {
        earlySecret = KeyDerivation.extract(salt: Array("qnsp1 early".utf8), secret: staticSharedSecret)
    }

    private static func payloadKey(_ secret: SecretBytes, _ label: String, _ context: [UInt8]) -> PayloadKey {
        PayloadKey(key: KeyDerivation.expandLabelSecret(secret: secret, label: label + " key", context: context, length: 32),
                   nonce: KeyDerivation.expandLabelSecret(secret: secret, label: label + " iv", context: context, length: 12).copyBytes())
    }

    /// Key for the client hello payload; `context` = H(transcript before CH || CH prefix).
    public func clientHelloKey(context: [UInt8]) -> PayloadKey { Self.payloadKey(earlySecret, "ch", context) }

    /// Mixes in the ephemeral-KEM shared secret; `clientHelloHash` = H(transcript through CH).
    public mutating func mixEphemeral(_ ephemeralSharedSecret: some ContiguousBytes, clientHelloHash: [UInt8]) {
        let salt = KeyDerivation.expandLabelSecret(secret: earlySecret, label: "derived", context: clientHelloHash, length: 32)
        handshakeSecret = KeyDerivation.extract(salt: salt, secret: ephemeralSharedSecret)
    }

    /// Key for the server hello payload; `context` = H(transcript through CH || SH prefix).
    public func serverHelloKey(context: [UInt8]) -> PayloadKey {
        precondition(handshakeSecret != nil, "internal: server hello key before mixEphemeral")
        return Self.payloadKey(handshakeSecret ?? earlySecret, "sh", context)
    }

    /// Handshake traffic secrets; `serverHelloHash` = H(transcript through SH).
    public func handshakeTrafficSecrets(serverHelloHash: [UInt8]) -> (client: TrafficSecret, server: TrafficSecret) {
        precondition(handshakeSecret != nil, "internal: handshake secrets before mixEphemeral")
        let hs = handshakeSecret ?? earlySecret
        return (TrafficSecret(secret: KeyDerivation.expandLabelSecret(secret: hs, label: "c hs traffic", context: serverHelloHash, length: 32)),
                TrafficSecret(secret: KeyDerivation.expandLabelSecret(secret: hs, label: "s hs traffic", context: serverHelloHash, length: 32)))
    }

    /// Derives the master secret once the server hello is in the transcript.
    public mutating func deriveMaster(serverHelloHash: [UInt8]) {
        precondition(handshakeSecret != nil, "internal: master secret before mixEphemeral")
        let salt = KeyDerivation.expandLabelSecret(secret: handshakeSecret ?? earlySecret, label: "derived", context: serverHelloHash, length: 32)
        masterSecret = KeyDerivation.extract(salt: salt, secret: [UInt8](repeating: 0, count: 32))
    }

    /// Application traffic secrets and the exporter; `clientAuthHash` = H(transcript through ClientAuth).
    public func applicationSecrets(clientAuthHash: [UInt8]) -> (client: TrafficSecret, server: TrafficSecret, exporter: [UInt8]) {
        precondition(masterSecret != nil, "internal: application secrets before deriveMaster")
        let ms = masterSecret ?? earlySecret
        return (TrafficSecret(secret: KeyDerivation.expandLabelSecret(secret: ms, label: "c ap traffic", context: clientAuthHash, length: 32)),
                TrafficSecret(secret: KeyDerivation.expandLabelSecret(secret: ms, label: "s ap traffic", context: clientAuthHash, length: 32)),
                KeyDerivation.expandLabelSecret(secret: ms, label: "exporter", context: clientAuthHash, length: 32).copyBytes())
    }

    /// What the client signs: "qnsp1 client auth" context, message = H(through SH) || ClientAuth signed part.
    public static let clientAuthContext: [UInt8] = Array("qnsp1 client auth".utf8)
    /// What the server signs for a host key announcement (docs/protocol.md 4.4).
    public static let hostAnnouncementContext: [UInt8] = Array("qnsp1 host key".utf8)

    /// Wipes the early, handshake and master secrets in place (for this value and every copy).
    public mutating func wipe() {
        earlySecret.wipe()
        handshakeSecret?.wipe()
        masterSecret?.wipe()
        handshakeSecret = nil
        masterSecret = nil
    }
}
