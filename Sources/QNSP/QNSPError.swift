/// Everything that can end a QNSP connection, each with a specific cause.
/// Every error closes the connection; none is recoverable mid-session.
public enum QNSPError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: Clear handshake records
    case badMagic
    case unsupportedVersion(offered: [UInt8], supported: [UInt8])
    case unsupportedCellSize(Int)
    case cellSizeMismatch(expected: Int, actual: Int)
    case handshakeMessageTooLarge(Int)
    case malformedHandshake(String)
    case nonZeroPadding
    case unexpectedMessage(String)
    case truncatedInput(String)

    // MARK: Authentication
    case unknownHostKey
    case clientHelloUndecryptable
    case serverAuthenticationFailed
    case hostKeyNotTrusted(fingerprint: String)
    case hostKeySignatureInvalid
    case userSignatureInvalid
    case userNotAuthorized(String)
    case noCommonCipher
    case rejectedByPeer(code: UInt8, message: String)
    /// The server's handshake guard refused a hello (replay, rate limit, cookie): server side.
    case handshakeRefused(String)
    /// The server sent a second Retry, or a Retry where none belongs.
    case unexpectedRetry

    // MARK: Cells
    case cellAuthenticationFailed(sequence: UInt64)
    case replayedCell(sequence: UInt64, expected: UInt64)
    case reorderedCell(sequence: UInt64, expected: UInt64)
    case invalidCellLength(Int, maximum: Int)
    case unknownCellType(UInt8)
    case sequenceExhausted
    case peerClosed(code: UInt8, reason: String)
    case connectionClosed
    /// Nothing arrived from the peer for this long, keepalive pings included.
    case peerUnresponsive(seconds: Int64)
    /// The handshake did not finish within the allowed time (login grace time).
    case handshakeTimeout(seconds: Int64)
    case keyMaterial(String)

    public var description: String {
        switch self {
        case .badMagic: return "peer does not speak QNSP (bad magic)"
        case .peerUnresponsive(let seconds): return "the peer did not answer for \(seconds) s (keepalive timeout)"
        case .handshakeTimeout(let seconds): return "the handshake did not finish within \(seconds) s"
        case .unsupportedVersion(let offered, let supported):
            return "no common QNSP version (offered \(offered), supported \(supported))"
        case .unsupportedCellSize(let n): return "unsupported cell size \(n)"
        case .cellSizeMismatch(let e, let a): return "cell size mismatch: expected \(e), got \(a)"
        case .handshakeMessageTooLarge(let n): return "handshake message of \(n) bytes exceeds the limit"
        case .malformedHandshake(let why): return "malformed handshake message: \(why)"
        case .nonZeroPadding: return "handshake record padding is not zero"
        case .unexpectedMessage(let what): return "unexpected message: \(what)"
        case .truncatedInput(let what): return "connection ended in the middle of \(what)"
        case .unknownHostKey: return "client addressed a host key this server does not have"
        case .clientHelloUndecryptable: return "client hello did not decrypt: the client pinned a different host key"
        case .serverAuthenticationFailed:
            return "server failed to prove possession of the pinned host key (possible man-in-the-middle or changed host key)"
        case .hostKeyNotTrusted(let fp): return "host key \(fp) is not trusted"
        case .hostKeySignatureInvalid: return "host key announcement signature is invalid"
        case .userSignatureInvalid: return "user authentication signature is invalid"
        case .userNotAuthorized(let why): return why == QNSPConnection.genericRefusal ? why : "permission denied: \(why)"
        case .noCommonCipher: return "no common cipher suite"
        case .rejectedByPeer(let code, let message): return "rejected by peer (code \(code)): \(message)"
        case .handshakeRefused(let why): return "client hello refused: \(why)"
        case .unexpectedRetry: return "the server asked for a second retry"
        case .cellAuthenticationFailed(let seq): return "cell \(seq) failed authentication (corrupted or forged)"
        case .replayedCell(let seq, let expected): return "replayed cell: got sequence \(seq), expected \(expected)"
        case .reorderedCell(let seq, let expected): return "reordered cell: got sequence \(seq), expected \(expected)"
        case .invalidCellLength(let n, let max): return "cell payload length \(n) exceeds maximum \(max)"
        case .unknownCellType(let t): return "unknown cell type 0x\(String(t, radix: 16))"
        case .sequenceExhausted: return "sequence numbers exhausted without a key update"
        case .peerClosed(let code, let reason): return "peer closed the session (code \(code))\(reason.isEmpty ? "" : ": \(reason)")"
        case .connectionClosed: return "connection is closed"
        case .keyMaterial(let why): return "key material error: \(why)"
        }
    }
}

extension QNSPError {
    /// Runs a closure that can only throw `QNSPError` through an untyped-rethrows API
    /// (such as `withUnsafeBytes`) and restores the typed error.
    @inline(__always)
    public static func typed<T>(_ body: () throws -> T) throws(QNSPError) -> T {
        do { return try body() } catch let e as QNSPError { throw e } catch { throw .keyMaterial("\(error)") }
    }
}
