import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSP
import QNSPCrypto
import QNSPNIO
import QNSPQUIC
import QPQServer

/// qpqd's network side: a QNSP listener (TCP, and QUIC after ``startQUIC(group:host:port:credentials:configuration:)``)
/// whose sessions are served by ``QPQServerHandler``.
/// QNSP accepts any user key (a qpq connection's QNSP key is random and carries no identity:
/// accounts and devices are qpq/1's business, docs/messaging.md §4).
package final class QPQService: Sendable {
    package let channel: Channel
    package let registry: QPQPushRegistry
    package let pool: NIOThreadPool
    /// The open connections (TCP and QUIC streams), so that shutdown can close them before the pool
    /// and the event loops stop.
    private let connections: NIOLockedValueBox<[ObjectIdentifier: Channel]>
    /// Starts the qpq/1 handlers on a connection whose QNSP handshake is under way (either carrier).
    private let serve: @Sendable (Channel, EventLoopFuture<QNSPSessionInfo>) -> EventLoopFuture<Void>
    private let parameters: QNSPConnection.ServerParameters
    private let options: QNSPBootstrap.Options
    private let quicEndpoint = NIOLockedValueBox<QUICEndpoint?>(nil)

    private init(channel: Channel, registry: QPQPushRegistry, pool: NIOThreadPool, connections: NIOLockedValueBox<[ObjectIdentifier: Channel]>,
                 serve: @escaping @Sendable (Channel, EventLoopFuture<QNSPSessionInfo>) -> EventLoopFuture<Void>,
                 parameters: QNSPConnection.ServerParameters, options: QNSPBootstrap.Options) {
        self.channel = channel
        self.registry = registry
        self.pool = pool
        self.connections = connections
        self.serve = serve
        self.parameters = parameters
        self.options = options
    }

    /// Also serves qpq/1 over QUIC (docs/messaging.md §1.1): a QUIC endpoint on UDP `host:port`
    /// (by default the TCP port's number) with one service, ALPN `qpq/1`, that runs QNSP (the same
    /// host key, the same options) on every stream a client opens and qpq/1 inside it, exactly as
    /// over TCP. Returns the UDP port. Call at most once.
    package func startQUIC(group: EventLoopGroup, host: String, port: Int? = nil, credentials: QUICCredentials,
                           configuration: QUICEndpoint.Configuration = QUICEndpoint.Configuration()) -> EventLoopFuture<Int> {
        let parameters = self.parameters
        var services = QUICServiceRegistry()
        services.register(QUICServiceRegistry.qpq, QNSPQUICBootstrap.service(parametersFor: { _, _ in parameters }, options: options,
                                                                             childInitializer: serve))
        let box = quicEndpoint
        return QUICEndpoint.bind(group: group, host: host, port: port ?? self.port ?? 0, server: credentials, services: services,
                                 configuration: configuration).flatMapThrowing { endpoint in
            box.withLockedValue { $0 = endpoint }
            guard let bound = endpoint.localAddress?.port else { throw ChannelError.unknownLocalAddress }
            return bound
        }
    }

    /// Deletes expired (disappearing) messages once a second, on the pool. The database decides
    /// what is expired, so several nodes may sweep the same database.
    private func startSweeper(loop: EventLoop, context: QPQServerContext) {
        let pool = self.pool
        let task = loop.scheduleRepeatedAsyncTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            pool.runIfActive(eventLoop: loop) { _ = try context.store.expire(now: context.clock()) }
                .flatMapErrorThrowing { _ in }  // a failed sweep is retried next second
        }
        channel.closeFuture.whenComplete { _ in task.cancel() }
    }

    /// The bound port.
    package var port: Int? { channel.localAddress?.port }

    /// Binds `host:port` and serves until ``close()``.
    package static func start(group: EventLoopGroup, host: String, port: Int, hostKey: HostKeyPair, context: QPQServerContext,
                              options: QNSPBootstrap.Options = QNSPBootstrap.Options(), threads: Int = 2,
                              flow: QPQFlowControl = QPQFlowControl(), requestLog: QPQRequestLog? = nil) async throws -> QPQService {
        try await bind(group: group, host: host, port: port, hostKey: hostKey, context: context, options: options, threads: threads, flow: flow,
                       requestLog: requestLog).get()
    }

    /// As ``start(group:host:port:hostKey:context:options:threads:flow:requestLog:)``, as a future (for synchronous
    /// callers). `requestLog`: one line per request (docs/messaging.md §8), nil for none.
    package static func bind(group: EventLoopGroup, host: String, port: Int, hostKey: HostKeyPair, context: QPQServerContext,
                             options: QNSPBootstrap.Options = QNSPBootstrap.Options(), threads: Int = 2,
                             flow: QPQFlowControl = QPQFlowControl(), requestLog: QPQRequestLog? = nil) -> EventLoopFuture<QPQService> {
        let pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        let registry = QPQPushRegistry()
        let batcher = QPQPushBatcher(store: context.store, pool: pool)
        let parameters = QNSPConnection.ServerParameters(hostKeys: [hostKey]) { _, _ in .accept }
        let connections = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
        let serve: @Sendable (Channel, EventLoopFuture<QNSPSessionInfo>) -> EventLoopFuture<Void> = { ch, _ in
            let id = ObjectIdentifier(ch)
            connections.withLockedValue { $0[id] = ch }
            ch.closeFuture.whenComplete { _ in _ = connections.withLockedValue { $0.removeValue(forKey: id) } }
            return ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(QPQServerHandler(context: context, registry: registry, pool: pool, batcher: batcher, flow: flow,
                                                                      requestLog: requestLog))
            }
        }
        return QNSPBootstrap.bindServer(group: group, host: host, port: port, parameters: parameters, options: options,
                                        childInitializer: serve).map { channel in
            let service = QPQService(channel: channel, registry: registry, pool: pool, connections: connections, serve: serve,
                                     parameters: parameters, options: options)
            service.startSweeper(loop: channel.eventLoop, context: context)
            return service
        }.flatMapErrorThrowing { error in
            pool.shutdownGracefully { _ in }
            throw error
        }
    }

    /// Stops in the order that leaves nothing scheduled on a stopped event loop: stop listening,
    /// close every connection (no new storage work), then stop the pool. Queued pool jobs are
    /// cancelled on a serial queue before the shutdown callback, so their failures reach the
    /// connections' event loops while those still run (NIO runs the cancellations asynchronously;
    /// on its default concurrent queue they could land after the caller stopped the event loops).
    /// The event loop group is the caller's to stop, after this.
    package func close() async throws {
        try? await channel.close()
        if let endpoint = quicEndpoint.withLockedValue({ $0 }) { try? await endpoint.close().get() }
        for ch in connections.withLockedValue({ Array($0.values) }) { try? await ch.close() }
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
            pool.shutdownGracefully(queue: DispatchQueue(label: "qpqd.pool-shutdown")) { error in
                if let error { c.resume(throwing: error) } else { c.resume() }
            }
        }
    }

    /// As ``close()``, blocking (not for the Swift concurrency pool).
    package func closeSync() throws {
        try? channel.close().wait()
        if let endpoint = quicEndpoint.withLockedValue({ $0 }) { try? endpoint.close().wait() }
        for ch in connections.withLockedValue({ Array($0.values) }) { try? ch.close().wait() }
        let done = DispatchSemaphore(value: 0)
        let failure = NIOLockedValueBox<(any Error)?>(nil)
        pool.shutdownGracefully(queue: DispatchQueue(label: "qpqd.pool-shutdown")) { error in
            failure.withLockedValue { $0 = error }
            done.signal()
        }
        done.wait()
        if let error = failure.withLockedValue({ $0 }) { throw error }
    }
}
