import Logging
import NIOCore
import PostgresNIO

/// One connection inside `BEGIN ... COMMIT`, with blocking helpers (storage pool threads only).
struct PostgresTransaction {
    let connection: PostgresConnection
    let logger: Logger

    @discardableResult
    func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
        try connection.query(query, logger: logger).wait()
    }

    func rows(_ query: PostgresQuery) throws -> [PostgresRow] { try run(query).rows }

    func first(_ query: PostgresQuery) throws -> PostgresRow? { try run(query).rows.first }

    /// The number of rows an INSERT, UPDATE or DELETE touched.
    func changes(_ query: PostgresQuery) throws -> Int { try run(query).metadata.rows ?? 0 }

    func int(_ query: PostgresQuery) throws -> Int64? { try first(query).map { try $0.decode(Int64.self) } }

    func ints(_ query: PostgresQuery) throws -> [Int64] { try rows(query).map { try $0.decode(Int64.self) } }
}

extension ByteBuffer {
    var bytes: [UInt8] { [UInt8](readableBytesView) }
}

extension Array where Element == UInt8 {
    /// As `bytea` (a bare `[UInt8]` would bind as an array of `"char"`).
    var bytea: ByteBuffer { ByteBuffer(bytes: self) }
}

extension PostgresConnection {
    /// Closes without waiting, and keeps the connection alive until it is closed (postgres-nio
    /// asserts that a connection is closed when it is released).
    func closeInBackground() {
        let connection = self
        (close() as EventLoopFuture<Void>).whenComplete { _ in withExtendedLifetime(connection) {} }
    }
}
