import QNSPCrypto

/// What a connection reports to its driver besides application bytes.
public enum QNSPEvent: Sendable, Equatable {
    /// The handshake finished; application data may flow.
    case established(QNSPSessionInfo)
    /// The peer switched to its next sending key.
    case peerKeyUpdated(epoch: UInt64)
    /// Answer to a `ping`.
    case pong([UInt8])
    /// The peer will send no more data (half-close).
    case endOfStream
    /// The peer closed the session in order.
    case closed(code: UInt8, reason: String)
    /// Server only: the user proved possession of `key`; the driver asks its policy and answers
    /// with `completeAuthorization` (input is held until then).
    case authorizationRequired(username: String, key: UserPublicKey)
    /// Client only: the server answered with a Retry (under load or for a clock difference) and
    /// the hello was sent again with its cookie.
    case retried(clockOffset: Int64)
}

/// Facts about an established session, for logs, policy and channel binding.
public struct QNSPSessionInfo: Sendable, Equatable {
    public enum Role: Sendable, Equatable { case client, server }
    public var role: Role
    public var version: UInt8
    public var cipher: AEADAlgorithm
    public var cellSize: Int
    public var service: String
    public var username: String
    public var userKeyFingerprint: String
    public var hostKey: HostPublicKey
    /// 32 bytes bound to the whole handshake transcript, for channel binding by inner protocols.
    public var exporterSecret: [UInt8]
    /// Whether this connection began with a first-contact host key exchange.
    public var firstContact: Bool
    /// Client: the server asked for a cookie round (a Retry) before it served the hello; the
    /// value is how far the server's clock was ahead of ours, in seconds.
    public var retryClockOffset: Int64?
}

/// Close codes carried in `.close` cells.
public enum QNSPCloseCode: UInt8, Sendable {
    case normal = 0
    case protocolError = 1
    case authenticationFailed = 2
    case idleTimeout = 3
    case shutdown = 4
}
