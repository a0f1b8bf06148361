import CNGTCP2

/// gnutls certificate credentials for QUIC's TLS: a server's certificate and key, or a client's
/// (which does not verify the server: QNSP inside the streams authenticates both ends).
public final class QUICCredentials: @unchecked Sendable {
    // @unchecked: gnutls credentials are read-only after creation and may be shared by sessions.
    let handle: OpaquePointer

    /// Server credentials from PEM certificate and key bytes.
    public init(certificatePEM: [UInt8], keyPEM: [UInt8]) throws {
        guard let h = cngtcp2_cred_new_server(certificatePEM, certificatePEM.count, keyPEM, keyPEM.count) else {
            throw QUICError.certificate("the certificate or key does not load")
        }
        handle = h
    }

    /// Client credentials (no certificate, no verification).
    public init() throws {
        guard let h = cngtcp2_cred_new_client() else {
            throw QUICError.certificate("cannot allocate client credentials")
        }
        handle = h
    }

    deinit { cngtcp2_cred_free(handle) }

    /// A fresh self-signed ECDSA P-256 certificate and PKCS#8 key (PEM).
    public static func generateSelfSigned(
        commonName: String = "qsshd QUIC"
    ) throws -> (certificate: [UInt8], key: [UInt8]) {
        var cert = [UInt8](repeating: 0, count: 8192)
        var key = [UInt8](repeating: 0, count: 8192)
        var certLen = cert.count
        var keyLen = key.count
        let rv = cngtcp2_generate_self_signed(commonName, &cert, &certLen, &key, &keyLen)
        guard rv == 0 else { throw QUICError.certificate("cannot generate a self-signed certificate (\(rv))") }
        let result = (Array(cert[0..<certLen]), Array(key[0..<keyLen]))
        for i in key.indices { key[i] = 0 }
        return result
    }
}
