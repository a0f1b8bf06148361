import NIOCore

/// How a server checks passwords for one connection (docs/protocol.md §7.10).
public struct PasswordLogin: Sendable {
    /// The user name the QNSP handshake named; the only one that may log in.
    public var username: String
    /// Checks a password (off the event loop; slowed down as the server's rate limit says):
    /// the account to log in to, or nil for a refusal.
    public var verify: @Sendable (_ password: String, _ loop: EventLoop) -> EventLoopFuture<SessionUser?>
    /// Password requests this connection may make.
    public var maxAttempts: Int
    /// Called when a password request comes after the last allowed attempt (the server closes
    /// the connection; a well-behaved client stops asking by itself).
    public var onGiveUp: @Sendable () -> Void

    public init(
        username: String, maxAttempts: Int = 3,
        verify: @escaping @Sendable (_ password: String, _ loop: EventLoop) -> EventLoopFuture<SessionUser?>,
        onGiveUp: @escaping @Sendable () -> Void = {}
    ) {
        self.username = username
        self.verify = verify
        self.maxAttempts = max(1, maxAttempts)
        self.onGiveUp = onGiveUp
    }
}
