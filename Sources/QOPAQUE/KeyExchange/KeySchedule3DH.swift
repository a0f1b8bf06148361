import Foundation

/// The OPAQUE-3DH key schedule (RFC 9807 §6.4.2): the preamble, Expand-Label / Derive-Secret and
/// DeriveKeys, shared by client and server so that both compute the same transcript.
package enum KeySchedule3DH {
    /// The keys DeriveKeys produces.
    package struct Keys {
        package let handshakeSecret: SecretBytes
        package let serverMACKey: SecretBytes
        package let clientMACKey: SecretBytes
        package let sessionKey: SecretBytes
    }

    /// Preamble = "OPAQUEv1-" || I2OSP(len(context), 2) || context || I2OSP(len(client_identity), 2) ||
    /// client_identity || ke1 || I2OSP(len(server_identity), 2) || server_identity ||
    /// credential_response || server_nonce || server_public_keyshare.
    package static func preamble(
        context: [UInt8],
        credentials: CleartextCredentials,
        ke1: KE1,
        credentialResponse: CredentialResponse,
        serverNonce: [UInt8],
        serverPublicKeyshare: Ristretto255Element
    ) -> [UInt8] {
        var out = Bytes.ascii("OPAQUEv1-")
        out += Bytes.i2osp2(context.count) + context
        out += Bytes.i2osp2(credentials.clientIdentity.count) + credentials.clientIdentity
        out += ke1.bytes
        out += Bytes.i2osp2(credentials.serverIdentity.count) + credentials.serverIdentity
        out += credentialResponse.bytes
        out += serverNonce
        out += serverPublicKeyshare.bytes
        return out
    }

    /// Expand-Label(secret, label, context, length) with CustomLabel = I2OSP(length, 2) ||
    /// I2OSP(len("OPAQUE-" + label), 1) || "OPAQUE-" + label || I2OSP(len(context), 1) || context.
    package static func expandLabel(secret: SecretBytes, label: String, context: [UInt8], length: Int) -> SecretBytes {
        let fullLabel = Bytes.ascii("OPAQUE-" + label)
        precondition(fullLabel.count <= 255 && context.count <= 255, "Expand-Label field sizes")
        let info = Bytes.i2osp2(length) + [UInt8(fullLabel.count)] + fullLabel + [UInt8(context.count)] + context
        return SHA512KDF.expand(prk: secret, info: [info], length: length)
    }

    /// DeriveKeys(ikm, preamble), plus the handshake secret the test vectors list.
    package static func deriveKeys(ikm: SecretBytes, preamble: [UInt8]) -> Keys {
        let prk = SHA512KDF.extract(salt: [UInt8](), ikm: ikm)
        let transcriptHash = SHA512KDF.hash([preamble])
        let handshakeSecret = expandLabel(secret: prk, label: "HandshakeSecret", context: transcriptHash, length: 64)
        let sessionKey = expandLabel(secret: prk, label: "SessionKey", context: transcriptHash, length: 64)
        let serverMACKey = expandLabel(secret: handshakeSecret, label: "ServerMAC", context: [], length: 64)
        let clientMACKey = expandLabel(secret: handshakeSecret, label: "ClientMAC", context: [], length: 64)
        return Keys(
            handshakeSecret: handshakeSecret,
            serverMACKey: serverMACKey,
            clientMACKey: clientMACKey,
            sessionKey: sessionKey
        )
    }

    /// server_mac = MAC(Km2, Hash(preamble)).
    package static func serverMAC(keys: Keys, preamble: [UInt8]) -> SecretBytes {
        SHA512KDF.mac(key: keys.serverMACKey, [SHA512KDF.hash([preamble])])
    }

    /// client_mac = MAC(Km3, Hash(preamble || server_mac)).
    package static func clientMAC(keys: Keys, preamble: [UInt8], serverMAC: some ContiguousBytes) -> SecretBytes {
        SHA512KDF.mac(key: keys.clientMACKey, [SHA512KDF.hash([preamble, serverMAC])])
    }
}
