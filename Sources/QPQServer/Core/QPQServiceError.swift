import QPQProtocol

/// A request the service refuses: the code, detail and message of the `Error` response it becomes.
package struct QPQServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    package let code: QPQErrorCode
    package let detail: UInt64
    package let message: String

    package init(_ code: QPQErrorCode, _ message: String, detail: UInt64 = 0) {
        self.code = code
        self.detail = detail
        self.message = message
    }

    package var response: QPQResponse { .error(code: code, detail: detail, message: message) }
    package var description: String { "\(code): \(message)" }

    /// The one answer for a wrong password, an unknown user and a bad session token.
    package static let authenticationFailed = QPQServiceError(.authenticationFailed, "wrong user name or password")
    package static let notAuthenticated = QPQServiceError(.notAuthenticated, "log in first")
}
