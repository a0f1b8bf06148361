import NIOCore
import NIOPosix
import QNSP
import QNSPCrypto
import QNSPNIO
import QPQServer

/// qpqd's network side: a QNSP listener whose sessions are served by ``QPQServerHandler``.
/// QNSP accepts any user key (a qpq connection's QNSP key is random and carries no identity:
/// accounts and devices are qpq/1's business, docs/messaging.md §4).
package final class QPQService: Sendable {
    package let channel: Channel
    package let registry: QPQPushRegistry
    package let pool: NIOThreadPool

    private init(channel: Channel, registry: QPQPushRegistry, pool: NIOThreadPool) {
        self.channel = channel
        self.registry = registry
        self.pool = pool
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
                              options: QNSPBootstrap.Options = QNSPBootstrap.Options(), threads: Int = 2) async throws -> QPQService {
        try await bind(group: group, host: host, port: port, hostKey: hostKey, context: context, options: options, threads: threads).get()
    }

    /// As ``start(group:host:port:hostKey:context:options:threads:)``, as a future (for synchronous callers).
    package static func bind(group: EventLoopGroup, host: String, port: Int, hostKey: HostKeyPair, context: QPQServerContext,
                             options: QNSPBootstrap.Options = QNSPBootstrap.Options(), threads: Int = 2) -> EventLoopFuture<QPQService> {
        let pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        let registry = QPQPushRegistry()
        let batcher = QPQPushBatcher(store: context.store, pool: pool)
        let parameters = QNSPConnection.ServerParameters(hostKeys: [hostKey]) { _, _ in .accept }
        return QNSPBootstrap.bindServer(group: group, host: host, port: port, parameters: parameters, options: options) { ch, _ in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(QPQServerHandler(context: context, registry: registry, pool: pool, batcher: batcher))
            }
        }.map { channel in
            let service = QPQService(channel: channel, registry: registry, pool: pool)
            service.startSweeper(loop: channel.eventLoop, context: context)
            return service
        }.flatMapErrorThrowing { error in
            pool.shutdownGracefully { _ in }
            throw error
        }
    }

    /// Stops listening (open connections are closed with the event loop group) and stops the pool.
    package func close() async throws {
        try? await channel.close()
        try await pool.shutdownGracefully()
    }

    /// As ``close()``, blocking (not for the Swift concurrency pool).
    package func closeSync() throws {
        try? channel.close().wait()
        try pool.syncShutdownGracefully()
    }
}
