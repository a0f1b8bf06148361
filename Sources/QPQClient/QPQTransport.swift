import QPQProtocol

/// Something that carries one request to qpqd and brings back its response (a QNSP connection, or
/// an in-process server session in tests).
package protocol QPQTransport: Sendable {
    func call(_ request: QPQRequest) async throws(QPQClientError) -> QPQResponse
}

extension QPQTransport {
    /// Calls and turns an `Error` response into ``QPQClientError/server(code:detail:message:)``.
    package func expect(_ request: QPQRequest) async throws(QPQClientError) -> QPQResponse {
        let response = try await call(request)
        if case .error(let code, let detail, let message) = response {
            throw .server(code: code, detail: detail, message: message)
        }
        return response
    }
}
