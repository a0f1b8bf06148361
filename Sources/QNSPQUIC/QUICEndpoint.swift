import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One UDP socket speaking QUIC (ngtcp2 + gnutls) on SwiftNIO's `DatagramBootstrap`: a server
/// with one service per ALPN (`QUICServiceRegistry`), a client endpoint, or both.
public final class QUICEndpoint: Sendable {
    /// Endpoint settings.
    public struct Configuration: Sendable {
        /// When a server validates a client's address with a Retry round trip before any handshake
        /// work (docs/protocol.md §8.4): by default only under load.
        public var retry = RetryPolicy.underLoad(newConnectionsPerSecond: 50)
        /// Shorthand for `retry`: `.always` (true) or `.never` (false).
        public var requireRetry: Bool {
            get { retry == .always }
            set { retry = newValue ? .always : .never }
        }
        public var parameters = QUICConnection.Parameters()
        /// Connections beyond this are not accepted (their Initials are dropped).
        public var maxConnections = 10_000
        /// Called with the endpoint `QNSPQUICBootstrap.connect` binds for its connection, once
        /// bound (e.g. to `rebind` it later).
        public var onEndpoint: (@Sendable (QUICEndpoint) -> Void)?
        public init() {}
    }

    public let channel: Channel
    let handler: QUICEndpointHandler
    private let clientCredentials: QUICCredentials
    private let parameters: QUICConnection.Parameters

    private init(
        channel: Channel,
        handler: QUICEndpointHandler,
        clientCredentials: QUICCredentials,
        parameters: QUICConnection.Parameters
    ) {
        self.channel = channel
        self.handler = handler
        self.clientCredentials = clientCredentials
        self.parameters = parameters
    }

    /// Binds a UDP socket. With `server` credentials it accepts connections for the registry's
    /// ALPNs; it can always make client connections.
    public static func bind(
        group: EventLoopGroup,
        host: String,
        port: Int,
        server: QUICCredentials? = nil,
        services: QUICServiceRegistry = QUICServiceRegistry(),
        configuration: Configuration = Configuration()
    ) -> EventLoopFuture<QUICEndpoint> {
        let loop = group.next()
        let clientCredentials: QUICCredentials
        do {
            clientCredentials = try QUICCredentials()
            if server != nil && services.alpns.isEmpty {
                throw QUICError.invalidArgument("a server needs at least one ALPN service")
            }
        } catch {
            return loop.makeFailedFuture(error)
        }
        let handlerBox = NIOLockedValueBox<QUICEndpointHandler?>(nil)
        let bootstrap = datagramBootstrap(group: loop) { ch in
                ch.eventLoop.makeCompletedFuture {
                    let context = try server.map {
                        try QUICServerContext(
                            credentials: $0,
                            alpns: services.alpns,
                            retry: configuration.retry,
                            parameters: configuration.parameters
                        )
                    }
                    let h = QUICEndpointHandler(
                        loop: ch.eventLoop,
                        services: services,
                        server: context,
                        maxConnections: configuration.maxConnections
                    )
                    handlerBox.withLockedValue { $0 = h }
                    try ch.pipeline.syncOperations.addHandler(h)
                }
        }
        // An address needs no resolver (getaddrinfo asks the kernel for the interfaces' addresses).
        let bound: EventLoopFuture<Channel>
        if let address = try? SocketAddress(ipAddress: host, port: port) {
            bound = bootstrap.bind(to: address)
        } else {
            bound = bootstrap.bind(host: host, port: port)
        }
        return bound
            .flatMapThrowing { ch in
                guard let h = handlerBox.withLockedValue({ $0 }) else { throw QUICError.connectionClosed }
                return QUICEndpoint(
                    channel: ch,
                    handler: h,
                    clientCredentials: clientCredentials,
                    parameters: configuration.parameters
                )
            }
    }

    /// The endpoint's UDP socket options; `initializer` adds its handler.
    static func datagramBootstrap(
        group: EventLoopGroup,
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) -> DatagramBootstrap {
        // recvmmsg: 16 datagrams (2 KiB slots) a call, 4 calls a read burst (the handler processes
        // each connection once per burst). With UDP receive offload (UDP_GRO) a slot holds up to
        // 64 KiB of datagrams the kernel kept together: 4 slots a call then.
        let gro = System.supportsUDPReceiveOffload
        let slots = gro ? 4 : 16
        let bootstrap = DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            // Bursts of a send quantum (and a peer's) must not overflow the kernel's default buffers.
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: slots * (gro ? 65_536 : 2048)))
            .channelOption(.datagramVectorReadMessageCount, value: slots)
            .channelOption(.maxMessagesPerRead, value: 4)
        guard gro else { return bootstrap.channelInitializer(initializer) }
        return bootstrap
            .channelOption(.datagramReceiveOffload, value: true)
            .channelOption(.datagramReceiveSegmentSize, value: true)
            .channelInitializer(initializer)
    }

    /// The address of the endpoint's first socket (see `rebind` for a later one).
    public var localAddress: SocketAddress? { channel.localAddress }

    /// Client roaming (and the test hook behind it): moves the endpoint to a fresh UDP socket on
    /// `host` and every client connection with it (QUIC connection migration; the server
    /// validates the new path, streams go on). Returns the new local address.
    public func rebind(host: String = "0.0.0.0") -> EventLoopFuture<SocketAddress> {
        let h = handler
        return channel.eventLoop.flatSubmit { h.rebind(host: host) }
    }

    /// Connects to a QUIC server offering one ALPN; succeeds when the handshake completes.
    public func connect(to remote: SocketAddress, alpn: String) -> EventLoopFuture<QUICClient> {
        let h = handler
        let creds = clientCredentials
        let params = parameters
        return channel.eventLoop.flatSubmit {
            h.connect(to: remote, alpn: alpn, credentials: creds, parameters: params)
        }
    }

    /// Number of live connections (for tests and diagnostics).
    public func connectionCount() -> EventLoopFuture<Int> {
        let h = handler
        return channel.eventLoop.submit { h.connectionCount }
    }

    /// Closes the socket (the current one after a `rebind`); every connection ends.
    public func close() -> EventLoopFuture<Void> {
        let h = handler, first = channel
        return channel.eventLoop.flatSubmit {
            guard let current = h.channel, current !== first else { return first.close() }
            first.close(promise: nil)
            return current.close()
        }
    }
}
