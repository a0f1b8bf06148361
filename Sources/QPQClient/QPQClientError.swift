import QPQProtocol

/// Why a client call failed: the server refused it, answered something unexpected, or the
/// connection or local cryptography failed.
package enum QPQClientError: Error, Sendable, Equatable, CustomStringConvertible {
    case server(code: QPQErrorCode, detail: UInt64, message: String)
    case unexpectedResponse(String)
    case connection(String)
    case crypto(String)
    case timeout(String)
    /// A local file could not be read or written, or a received file failed its checks.
    case file(String)

    package var serverCode: QPQErrorCode? {
        if case .server(let code, _, _) = self { return code }
        return nil
    }

    package var description: String {
        switch self {
        case .server(let code, let detail, let message):
            return detail == 0 ? "server: \(message) (\(code))" : "server: \(message) (\(code), \(detail))"
        case .unexpectedResponse(let what): return "unexpected response: \(what)"
        case .connection(let what): return "connection: \(what)"
        case .crypto(let what): return "crypto: \(what)"
        case .timeout(let what): return "timed out: \(what)"
        case .file(let what): return what
        }
    }
}
