import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSP
import QNSPCrypto

/// Starts QNSP servers and clients over TCP or over a pair of file descriptors
/// (stdin/stdout), installing `QNSPHandler` below the caller's handlers.
public enum QNSPBootstrap {
    /// Per-connection settings.
    public struct Options: Sendable {
        public var configuration = QNSPConfiguration()
        public var rekeyInterval: TimeAmount? = .hours(1)
        /// Dead-peer detection (nil: off).
        public var keepalive: QNSPHandler.Keepalive?
        /// Fail connections whose handshake takes longer (nil: no limit).
        public var handshakeTimeout: TimeAmount?
        /// Close an established connection (orderly, with the reason "idle timeout") after this long
        /// without application data in either direction (nil: never). Keepalive pings do not count.
        public var idleTimeout: TimeAmount?
        /// When false, the caller's handlers must call `read()` (for backpressure).
        public var autoRead = true
        /// How a server runs its authorization policy (inline by default; servers whose policy
        /// reads files or the password database use a thread pool).
        public var authorization: QNSPHandler.Authorization = .inline
        /// Source address of outgoing TCP connections (nil: the system picks one).
        public var localAddress: SocketAddress?
        /// Stealth mode (docs/protocol.md §9): a ``StealthHandler`` below the QNSP handler; a
        /// server refuses connections `admit` turns away silently, as it does probes (nil: off).
        public var stealth: StealthOptions?
        /// Cover traffic (docs/protocol.md §9.6): a ``CoverTrafficHandler`` above the QNSP handler
        /// unless the mode is `off` (nil: off).
        public var padding: CoverTrafficPolicy?
        public init() {}
    }

    /// Adds the QNSP handler (and a handshake waiter) to a channel's pipeline.
    public static func addHandlers(
        to channel: Channel, connection: @autoclosure () -> QNSPConnection, isClient: Bool, options: Options
    ) throws -> QNSPHandshakeWaiter {
        let waiter = QNSPHandshakeWaiter(promise: channel.eventLoop.makePromise())
        let sync = channel.pipeline.syncOperations
        if let stealth = options.stealth {
            let role: StealthSession.Role = isClient ? .client : .server(stealth.replayFilter)
            try sync.addHandler(StealthHandler(session: StealthSession(role: role, line: stealth.line, probePolicy: stealth.probePolicy, mimic: stealth.mimic)))
        }
        try sync.addHandler(QNSPHandler(connection: connection(), isClient: isClient, rekeyInterval: options.rekeyInterval, keepalive: options.keepalive, handshakeTimeout: options.handshakeTimeout, idleTimeout: options.idleTimeout, authorization: options.authorization))
        if let padding = options.padding, padding.mode != .off { try sync.addHandler(CoverTrafficHandler(policy: padding)) }
        try sync.addHandler(waiter)
        return waiter
    }

    /// Listens on `host:port`; `childInitializer` adds the handlers that see each session's plaintext.
    /// - Parameter admit: asked first for each accepted connection; a returned reason refuses it
    ///   with a clear Reject record carrying that reason (no handshake work is done for it).
    public static func bindServer(
        group: EventLoopGroup, host: String, port: Int, parameters: QNSPConnection.ServerParameters, options: Options = Options(),
        admit: (@Sendable (Channel) -> String?)? = nil,
        childInitializer: @escaping @Sendable (Channel, EventLoopFuture<QNSPSessionInfo>) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<Channel> {
        bindServer(group: group, host: host, port: port, parametersFor: { _ in parameters }, options: options, admit: admit,
                   childInitializer: childInitializer)
    }

    /// As above, with parameters made for each connection (e.g. an authorization policy that
    /// records what it resolved for that connection). `peerAddress` is filled in here.
    public static func bindServer(
        group: EventLoopGroup, host: String, port: Int, parametersFor: @escaping @Sendable (Channel) -> QNSPConnection.ServerParameters,
        options: Options = Options(),
        admit: (@Sendable (Channel) -> String?)? = nil,
        childInitializer: @escaping @Sendable (Channel, EventLoopFuture<QNSPSessionInfo>) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<Channel> {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.autoRead, value: options.autoRead)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                if let why = admit?(channel) {
                    if let stealth = options.stealth {
                        return channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(
                                StealthHandler(session: StealthSession.refusing(line: stealth.line, probePolicy: stealth.probePolicy)))
                        }
                    }
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RejectAndClose(record: QNSPConnection.rejectRecord(code: .busy, message: why)))
                    }
                }
                do {
                    var parameters = parametersFor(channel)
                    parameters.peerAddress = addressBytes(channel.remoteAddress)
                    let waiter = try addHandlers(
                        to: channel, connection: QNSPConnection(server: parameters, configuration: options.configuration),
                        isClient: false, options: options)
                    return childInitializer(channel, waiter.future)
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .bind(host: host, port: port)
    }

    /// The IP address of a socket address as bytes (4 or 16; no port), for per-source limits.
    public static func addressBytes(_ address: SocketAddress?) -> [UInt8] {
        switch address {
        case .v4(let a)?:
            return withUnsafeBytes(of: a.address.sin_addr) { Array($0) }
        case .v6(let a)?:
            return withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
        default:
            return []
        }
    }

    /// Connects to `host:port`; the returned future gives the channel and the handshake result.
    public static func connect(
        group: EventLoopGroup, host: String, port: Int, parameters: QNSPConnection.ClientParameters, options: Options = Options(),
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }
    ) -> EventLoopFuture<(Channel, EventLoopFuture<QNSPSessionInfo>)> {
        // Kept from the initializer: looking the waiter up after connecting races with a
        // handshake that fails (and empties the pipeline) before the connect callback runs.
        let handshake = NIOLockedValueBox<EventLoopFuture<QNSPSessionInfo>?>(nil)
        var bootstrap = ClientBootstrap(group: group)
        if let localAddress = options.localAddress { bootstrap = bootstrap.bind(to: localAddress) }
        return bootstrap
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.autoRead, value: options.autoRead)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                do {
                    let waiter = try addHandlers(
                        to: channel, connection: QNSPConnection(client: parameters, configuration: options.configuration),
                        isClient: true, options: options)
                    handshake.withLockedValue { $0 = waiter.future }
                    return initializer(channel)
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .connect(host: host, port: port)
            .flatMapThrowing { channel in
                guard let future = handshake.withLockedValue({ $0 }) else { throw ChannelError.inappropriateOperationForState }
                return (channel, future)
            }
    }

    /// Runs QNSP over two file descriptors (e.g. stdin/stdout), as client or server.
    public static func stdio(
        group: EventLoopGroup, input: CInt, output: CInt, connection: @escaping @Sendable () -> QNSPConnection, isClient: Bool,
        options: Options = Options(),
        initializer: @escaping @Sendable (Channel, EventLoopFuture<QNSPSessionInfo>) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<Channel> {
        NIOPipeBootstrap(group: group)
            .channelOption(.autoRead, value: options.autoRead)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                do {
                    let waiter = try addHandlers(to: channel, connection: connection(), isClient: isClient, options: options)
                    return initializer(channel, waiter.future)
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .takingOwnershipOfDescriptors(input: input, output: output)
    }
}

/// Sends one clear Reject record when the connection becomes active and half-closes; what the
/// client sends is read and dropped until it closes (or 5 s pass). Closing at once, with the
/// client's hello unread, would make the kernel answer with a reset that can destroy the Reject
/// before the client reads it.
final class RejectAndClose: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let record: [UInt8]
    init(record: [UInt8]) { self.record = record }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        context.writeAndFlush(NIOAny(channel.allocator.buffer(bytes: record))).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
        channel.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}  // the client's hello is dropped

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}
