import CNGTCP2

/// Errors of the QUIC carrier.
public enum QUICError: Error, Equatable, Sendable, CustomStringConvertible {
    /// ngtcp2 or the shim failed (code and ngtcp2's text).
    case library(code: Int32, message: String)
    /// The peer closed the connection (transport or application error code).
    case closedByPeer(application: Bool, code: UInt64)
    /// The handshake failed because no ALPN was in common (TLS alert no_application_protocol).
    case noApplicationProtocol
    /// The connection closed (idle timeout, local close, or a failure before this call).
    case connectionClosed
    /// No service is registered for the negotiated ALPN.
    case unknownService(String)
    /// A certificate or key file could not be read, made or loaded.
    case certificate(String)
    /// The connection attempt did not finish in time.
    case timeout
    /// The peer sent a valid stateless reset: it has no state for this connection any more (it
    /// restarted or dropped it); the connection ended at once.
    case statelessReset
    /// Bad input from the caller (an empty ALPN, an address family the endpoint cannot use).
    case invalidArgument(String)

    static func lib(_ code: Int32) -> QUICError {
        .library(code: code, message: String(cString: cngtcp2_strerror(code)))
    }

    public var description: String {
        switch self {
        case .library(let code, let message): return "QUIC: \(message) (\(code))"
        case .closedByPeer(let app, let code):
            return "QUIC: closed by peer (\(app ? "application" : "transport") error 0x\(String(code, radix: 16)))"
        case .noApplicationProtocol: return "QUIC: no application protocol in common (ALPN refused)"
        case .connectionClosed: return "QUIC: connection closed"
        case .unknownService(let alpn): return "QUIC: no service for ALPN \(alpn)"
        case .certificate(let why): return "QUIC certificate: \(why)"
        case .timeout: return "QUIC: timed out"
        case .invalidArgument(let why): return "QUIC: \(why)"
        case .statelessReset: return "QUIC: the server reset the connection (stateless reset: it no longer knows this connection)"
        }
    }
}
