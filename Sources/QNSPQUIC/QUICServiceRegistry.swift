import NIOCore

/// What a service learns about one QUIC stream it serves.
public struct QUICStreamInfo: Sendable {
    public var alpn: String
    public var streamID: Int64
    public var remoteAddress: SocketAddress
}

/// ALPN as service: one UDP port, one handler per ALPN. Each bidirectional stream a client opens
/// is handed to the service of the connection's ALPN as a byte-stream `Channel` (exactly like an
/// accepted TCP connection); a client offering no registered ALPN fails the TLS handshake with
/// the alert no_application_protocol.
public struct QUICServiceRegistry: Sendable {
    /// Adds the service's handlers to a stream's channel.
    public typealias StreamInitializer = @Sendable (Channel, QUICStreamInfo) -> EventLoopFuture<Void>

    /// ALPNs of the QNSP family (docs/protocol.md §8).
    public static let qssh = "qssh/1"
    public static let qnsp = "qnsp/1"
    public static let ssh = "ssh"
    public static let qpq = "qpq/1"

    public private(set) var services: [String: StreamInitializer] = [:]
    /// Per ALPN, how many streams one connection may have open at once; streams beyond are reset.
    public private(set) var streamLimits: [String: Int] = [:]
    public init() {}

    /// - Parameter maxStreamsPerConnection: if set, a stream opened while the connection already
    ///   has that many open is reset at once (its service never sees it).
    public mutating func register(_ alpn: String, maxStreamsPerConnection: Int? = nil, _ initializer: @escaping StreamInitializer) {
        services[alpn] = initializer
        streamLimits[alpn] = maxStreamsPerConnection
    }

    public var alpns: [String] { services.keys.sorted() }
}
