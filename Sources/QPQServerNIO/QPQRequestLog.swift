import NIOConcurrencyHelpers
import QPQProtocol

/// qpqd's request log (`qpqd --log-requests`, docs/messaging.md §8): one line per answered request
/// with a per-process connection number, whether that connection had logged in when the request
/// came, the request's name and the outcome. It names no user, device or group, so it shows only
/// what the server could link anyway (requests by connection); it exists to test that the client
/// sends on a connection that never logs in. Off unless asked for.
package final class QPQRequestLog: Sendable {
    /// A connection's login state when a request arrives.
    package enum Login: String, Sendable {
        /// The connection has never been logged in as a device.
        case never
        /// The connection is logged in as a device (`LoginFinish` or `Resume` answered).
        case device
        /// The connection was logged in and no longer is (`Logout`, a failed `Resume` after a login).
        case ended
    }

    private let lastConnection = NIOLockedValueBox<UInt64>(0)
    private let write: @Sendable (String) -> Void

    /// `write` gets each line without a newline; it is called on event loops, so it must be quick.
    package init(write: @escaping @Sendable (String) -> Void) {
        self.write = write
    }

    /// A new connection's number (1, 2, …).
    package func nextConnection() -> UInt64 {
        lastConnection.withLockedValue { $0 += 1; return $0 }
    }

    /// Logs one answered request.
    package func record(connection: UInt64, login: Login, request: QPQRequest, response: QPQResponse) {
        let outcome: String
        if case .error(let code, _, _) = response { outcome = "error \(code)" } else { outcome = "ok" }
        write("qpqd: conn \(connection) login=\(login.rawValue) \(request.name) \(outcome)")
    }
}
