import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import QPQServer

/// A small fixed pool of PostgreSQL connections for synchronous callers. ``withConnection(_:)``
/// blocks its thread (waiting for a free connection, then for each query): call it only from
/// qpqd's storage thread pool, never from an event loop or the Swift concurrency pool.
/// Connections are opened on demand, up to `size`; a connection that failed is closed and
/// replaced by a new one on the next checkout.
final class PostgresConnectionPool: Sendable {
    let location: PostgresLocation
    let group: MultiThreadedEventLoopGroup
    private let size: Int
    private let slots: DispatchSemaphore
    private let idle = NIOLockedValueBox<(connections: [PostgresConnection], nextId: Int, closed: Bool)>(([], 1, false))
    let logger: Logger

    init(location: PostgresLocation, size: Int, group: MultiThreadedEventLoopGroup, logger: Logger) {
        self.location = location
        self.size = max(1, size)
        self.group = group
        self.slots = DispatchSemaphore(value: max(1, size))
        self.logger = logger
    }

    /// Opens a new connection (blocking).
    func connect() throws -> PostgresConnection {
        let id = idle.withLockedValue { s -> Int in
            defer { s.nextId += 1 }
            return s.nextId
        }
        return try PostgresConnection.connect(on: group.next(), configuration: location.configuration, id: id, logger: logger).wait()
    }

    /// Runs `body` with a connection of its own (blocking until one is free). If `body` throws, the
    /// connection may be mid-transaction: it is closed, and the next checkout opens a new one.
    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        slots.wait()
        defer { slots.signal() }
        let reused = idle.withLockedValue { s -> PostgresConnection? in s.connections.popLast() }
        let connection: PostgresConnection
        if let reused, !reused.isClosed {
            connection = reused
        } else {
            if let reused { reused.closeInBackground() }
            connection = try connect()
        }
        do {
            let result = try body(connection)
            let keep = idle.withLockedValue { s -> Bool in
                guard !s.closed, !connection.isClosed else { return false }
                s.connections.append(connection)
                return true
            }
            if !keep { connection.closeInBackground() }
            return result
        } catch {
            connection.closeInBackground()
            throw error
        }
    }

    private func takeAll() -> [PostgresConnection] {
        idle.withLockedValue { s -> [PostgresConnection] in
            s.closed = true
            defer { s.connections = [] }
            return s.connections
        }
    }

    /// Closes the idle connections; connections in use close when returned (blocking).
    func close() {
        for c in takeAll() { try? (c.close() as EventLoopFuture<Void>).wait() }
    }

    /// As ``close()``, without waiting for the connections to finish closing.
    func closeWithoutWaiting() {
        for c in takeAll() { c.closeInBackground() }
    }
}
