import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import QPQProtocol
import QPQServer

/// ``QPQStore`` on PostgreSQL (postgres-nio), so that several qpqd nodes can share one database.
/// The schema and the semantics are ``GRDBStore``'s (docs/messaging.md §9): both decide with the
/// shared rules of `QPQServer` (`QPQRequestChecks`, `QPQBlobQuota`, `QPQBlobRange`, `QPQFetchPage`,
/// `QPQBlobInfo.appending`) on what they read; only the SQL is this store's. Every method is one
/// transaction at READ COMMITTED on a connection of a small fixed pool; methods block their thread,
/// so the server calls them on its storage thread pool as it does the SQLite store.
///
/// Concurrency across nodes: the transactions that queue messages (`send`, `commit`) first take one
/// transaction-scoped advisory lock, so message ids grow in commit order (a device's fetch cursor
/// `message_id > after` never skips a message that commits late) and two commits to one epoch run
/// one after the other: the second sees the moved epoch and gets ``QPQErrorCode/epochMoved``. The
/// `UPDATE chat_groups ... WHERE id = ? AND epoch = ?` guard stays as in the SQLite store. Other
/// check-then-write methods lock the row they check (`FOR UPDATE`).
///
/// Push: `send` and `commit` `NOTIFY` the channel ``PostgresStore/channel`` inside their
/// transaction (PostgreSQL delivers it only if the transaction commits), `revokeDevice` too;
/// ``PostgresPushListener`` receives them on every node.
package final class PostgresStore: QPQStore {
    /// The LISTEN/NOTIFY channel of deliveries and revocations.
    package static let channel = "qpq_delivery"
    /// This store's node id (16 hex digits), the first word of its notifications, so that a node
    /// can skip its own (it already woke its local devices).
    package let node: String

    private let pool: PostgresConnectionPool
    private let logger: Logger

    /// Keys of the transaction-scoped advisory locks.
    package static let deliveryLock: Int64 = 0x7170_7164  // "qpqd"
    private static let schemaLock: Int64 = 0x7170_7173  // "qpqs"
    /// Device ids per notification: 300 ids of at most 20 digits stay far below NOTIFY's 8000 bytes.
    static let idsPerNotification = 300

    /// Connects to `location` (at most `connections` connections, opened on demand) and creates or
    /// upgrades the schema. Blocks: not for an event loop or the Swift concurrency pool.
    package init(location: PostgresLocation, connections: Int = 4) throws(QPQServiceError) {
        var logger = Logger(label: "qpqd.postgres")
        logger.logLevel = .critical
        self.logger = logger
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        pool = PostgresConnectionPool(location: location, size: connections, group: group, logger: logger)
        node = (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        do {
            try migrate()
        } catch {
            pool.close()
            try? group.syncShutdownGracefully()
            throw QPQServiceError(error.code, "PostgreSQL \(location.user)@\(location.host):\(location.port)/\(location.database): \(error.message)")
        }
    }

    deinit {
        // Not blocking: the last reference may go on any thread.
        pool.closeWithoutWaiting()
        pool.group.shutdownGracefully { _ in }
    }

    /// The event loop group the store's connections run on (the push listener shares it).
    var group: MultiThreadedEventLoopGroup { pool.group }
    package var location: PostgresLocation { pool.location }

    /// Closes the pooled connections (blocking).
    package func close() { pool.close() }

    // MARK: - Schema (docs/messaging.md §9)

    private static let schema: [String] = [
        """
        CREATE TABLE users(
            id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, record BYTEA NOT NULL, created_at BIGINT NOT NULL)
        """,
        """
        CREATE TABLE devices(
            id BIGSERIAL PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users(id), name TEXT NOT NULL,
            identity_key BYTEA NOT NULL, created_at BIGINT NOT NULL, revoked BOOLEAN NOT NULL DEFAULT FALSE)
        """,
        "CREATE INDEX devices_user ON devices(user_id)",
        """
        CREATE TABLE sessions(
            token_hash BYTEA PRIMARY KEY, device_id BIGINT NOT NULL REFERENCES devices(id), created_at BIGINT NOT NULL)
        """,
        "CREATE INDEX sessions_device ON sessions(device_id)",
        """
        CREATE TABLE key_packages(
            id BIGSERIAL PRIMARY KEY, device_id BIGINT NOT NULL REFERENCES devices(id), package BYTEA NOT NULL,
            last_resort BOOLEAN NOT NULL)
        """,
        "CREATE INDEX key_packages_device ON key_packages(device_id, last_resort, id)",
        """
        CREATE TABLE chat_groups(
            id BYTEA PRIMARY KEY, epoch BIGINT NOT NULL, token_hash BYTEA NOT NULL, created_at BIGINT NOT NULL,
            ttl_seconds BIGINT NOT NULL DEFAULT 0)
        """,
        """
        CREATE TABLE members(
            group_id BYTEA NOT NULL REFERENCES chat_groups(id), device_id BIGINT NOT NULL REFERENCES devices(id),
            PRIMARY KEY(group_id, device_id))
        """,
        "CREATE INDEX members_device ON members(device_id)",
        """
        CREATE TABLE messages(
            id BIGSERIAL PRIMARY KEY, group_id BYTEA NOT NULL, epoch BIGINT NOT NULL, kind SMALLINT NOT NULL,
            server_time BIGINT NOT NULL, payload BYTEA NOT NULL, expires_at BIGINT NOT NULL DEFAULT 0)
        """,
        "CREATE INDEX messages_expiry ON messages(expires_at) WHERE expires_at > 0",
        """
        CREATE TABLE deliveries(
            device_id BIGINT NOT NULL, message_id BIGINT NOT NULL REFERENCES messages(id),
            PRIMARY KEY(device_id, message_id))
        """,
        "CREATE INDEX deliveries_message ON deliveries(message_id)",
        """
        CREATE TABLE blobs(
            id BYTEA PRIMARY KEY, group_id BYTEA NOT NULL, user_id BIGINT NOT NULL REFERENCES users(id),
            size BIGINT NOT NULL, received BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)
        """,
        "CREATE INDEX blobs_user ON blobs(user_id, created_at)",
        "CREATE INDEX blobs_expiry ON blobs(expires_at)",
        """
        CREATE TABLE blob_parts(
            blob_id BYTEA NOT NULL REFERENCES blobs(id) ON DELETE CASCADE, "offset" BIGINT NOT NULL, data BYTEA NOT NULL,
            PRIMARY KEY(blob_id, "offset"))
        """,
    ]

    /// Version 1 of the schema, created once under an advisory lock (nodes may start together).
    private func migrate() throws(QPQServiceError) {
        try write { tx in
            try tx.run("SELECT pg_advisory_xact_lock(\(Self.schemaLock))")
            try tx.run("CREATE TABLE IF NOT EXISTS qpq_schema(version INTEGER NOT NULL)")
            let version = try tx.int("SELECT COALESCE(MAX(version), 0)::BIGINT FROM qpq_schema") ?? 0
            if version < 1 {
                for statement in Self.schema { try tx.run(PostgresQuery(unsafeSQL: statement)) }
                try tx.run("INSERT INTO qpq_schema(version) VALUES (1)")
            } else if version > 1 {
                throw QPQServiceError(.internal, "the database has schema version \(version); this qpqd knows 1")
            }
        }
    }

    // MARK: - Helpers

    /// Runs `body` in one READ COMMITTED transaction; a ``QPQServiceError`` thrown inside rolls back
    /// and is rethrown. A deadlock or serialization failure is retried (at most 3 attempts).
    @discardableResult
    private func write<T>(_ body: (PostgresTransaction) throws -> T) throws(QPQServiceError) -> T {
        try transaction("BEGIN ISOLATION LEVEL READ COMMITTED", body)
    }

    /// A read-only transaction on one snapshot (REPEATABLE READ), as a SQLite read transaction.
    @discardableResult
    private func read<T>(_ body: (PostgresTransaction) throws -> T) throws(QPQServiceError) -> T {
        try transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
    }

    @discardableResult
    private func transaction<T>(_ begin: PostgresQuery, _ body: (PostgresTransaction) throws -> T) throws(QPQServiceError) -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let outcome: Result<T, QPQServiceError> = try pool.withConnection { connection in
                    let tx = PostgresTransaction(connection: connection, logger: logger)
                    try tx.run(begin)
                    do {
                        let value = try body(tx)
                        try tx.run("COMMIT")
                        return .success(value)
                    } catch let refusal as QPQServiceError {
                        try tx.run("ROLLBACK")
                        return .failure(refusal)
                    }
                }
                return try outcome.get()
            } catch let e as QPQServiceError {
                throw e
            } catch let e as PSQLError {
                let state = e.serverInfo?[.sqlState]
                if attempt < 3, state == "40001" || state == "40P01" { continue }
                throw QPQServiceError(.internal, "storage: \(Self.describe(e))")
            } catch {
                throw QPQServiceError(.internal, "storage: \(error)")
            }
        }
    }

    /// The server's message and SQLSTATE (PSQLError's own description hides them), or the client-side code.
    static func describe(_ e: PSQLError) -> String {
        if let info = e.serverInfo {
            return "\(info[.message] ?? "error") (SQLSTATE \(info[.sqlState] ?? "?"))"
        }
        if let underlying = e.underlying { return "\(e.code): \(underlying)" }
        return "\(e.code)"
    }

    private static func i(_ v: UInt64) -> Int64 { Int64(bitPattern: v) }
    private static func u(_ v: Int64) -> UInt64 { UInt64(bitPattern: v) }

    private static func device(_ row: PostgresRow) throws -> QPQStoredDevice {
        let (id, user, name, key, created, revoked) = try row.decode((Int64, Int64, String, ByteBuffer, Int64, Bool).self)
        return QPQStoredDevice(id: u(id), userId: u(user), name: name, identityKey: key.bytes, createdAt: u(created), revoked: revoked)
    }

    private static let deviceColumns = "id, user_id, name, identity_key, created_at, revoked"

    /// `NOTIFY` inside the current transaction: "NODE d ID,ID,..." (deliveries) or "NODE r ID" (revocation).
    private func notify(_ tx: PostgresTransaction, kind: String, _ ids: [UInt64]) throws {
        var start = 0
        while start < ids.count {
            let chunk = ids[start..<min(ids.count, start + Self.idsPerNotification)]
            let payload = "\(node) \(kind) " + chunk.map(String.init).joined(separator: ",")
            try tx.run("SELECT pg_notify(\(Self.channel), \(payload))")
            start += chunk.count
        }
    }

    // MARK: - Accounts and devices

    package func createUser(name: String, record: [UInt8], now: UInt64) throws(QPQServiceError) -> UInt64 {
        try write { tx in
            guard let id = try tx.int("""
                INSERT INTO users(name, record, created_at) VALUES (\(name), \(record.bytea), \(Self.i(now)))
                ON CONFLICT (name) DO NOTHING RETURNING id
                """) else {
                throw QPQRequestChecks.userExists(name)
            }
            return Self.u(id)
        }
    }

    package func user(named name: String) throws(QPQServiceError) -> QPQStoredUser? {
        try read { tx in
            try tx.first("SELECT id, record FROM users WHERE name = \(name)").map {
                let (id, record) = try $0.decode((Int64, ByteBuffer).self)
                return QPQStoredUser(id: Self.u(id), name: name, record: record.bytes)
            }
        }
    }

    package func userName(id: UInt64) throws(QPQServiceError) -> String? {
        try read { tx in try tx.first("SELECT name FROM users WHERE id = \(Self.i(id))").map { try $0.decode(String.self) } }
    }

    package func device(id: UInt64) throws(QPQServiceError) -> QPQStoredDevice? {
        try read { tx in
            try tx.first(PostgresQuery(unsafeSQL: "SELECT \(Self.deviceColumns) FROM devices WHERE id = $1", binds: Self.binds(Self.i(id))))
                .map(Self.device)
        }
    }

    package func liveDevices(userId: UInt64) throws(QPQServiceError) -> [QPQStoredDevice] {
        try read { tx in
            try tx.rows(PostgresQuery(unsafeSQL: "SELECT \(Self.deviceColumns) FROM devices WHERE user_id = $1 AND NOT revoked ORDER BY id",
                                      binds: Self.binds(Self.i(userId)))).map(Self.device)
        }
    }

    private static func binds(_ v: Int64) -> PostgresBindings {
        var b = PostgresBindings()
        b.append(v)
        return b
    }

    package func addDevice(userId: UInt64, name: String, identityKey: [UInt8], now: UInt64) throws(QPQServiceError) -> UInt64 {
        try write { tx in
            let u = Self.i(userId)
            // The account row's lock makes the count and the insert one step across nodes.
            _ = try tx.first("SELECT id FROM users WHERE id = \(u) FOR UPDATE")
            let live = try tx.int("SELECT COUNT(*) FROM devices WHERE user_id = \(u) AND NOT revoked") ?? 0
            try QPQRequestChecks.deviceLimit(live: Int(live))
            guard let id = try tx.int("""
                INSERT INTO devices(user_id, name, identity_key, created_at) VALUES (\(u), \(name), \(identityKey.bytea), \(Self.i(now)))
                RETURNING id
                """) else { throw QPQServiceError(.internal, "storage: no device id") }
            return Self.u(id)
        }
    }

    package func revokeDevice(userId: UInt64, deviceId: UInt64) throws(QPQServiceError) {
        try write { tx in
            let d = Self.i(deviceId)
            let stored = try tx.first("SELECT user_id, revoked FROM devices WHERE id = \(d) FOR UPDATE").map {
                let (owner, revoked) = try $0.decode((Int64, Bool).self)
                return (userId: Self.u(owner), revoked: revoked)
            }
            try QPQRequestChecks.revocation(stored, userId: userId, deviceId: deviceId)
            try tx.run("UPDATE devices SET revoked = TRUE WHERE id = \(d)")
            try tx.run("DELETE FROM sessions WHERE device_id = \(d)")
            try tx.run("DELETE FROM key_packages WHERE device_id = \(d)")
            try tx.run("DELETE FROM members WHERE device_id = \(d)")
            let queued = try tx.ints("SELECT message_id FROM deliveries WHERE device_id = \(d) ORDER BY message_id")
            try Self.lockMessages(tx, queued)
            try tx.run("DELETE FROM deliveries WHERE device_id = \(d)")
            try Self.collect(tx, messageIds: queued)
            try notify(tx, kind: "r", [deviceId])
        }
    }

    /// Locks message rows (in id order) before their deliveries are deleted, so that two
    /// transactions acknowledging the last two copies of one message cannot both keep it.
    private static func lockMessages(_ tx: PostgresTransaction, _ ids: [Int64]) throws {
        guard !ids.isEmpty else { return }
        try tx.run("SELECT id FROM messages WHERE id = ANY(\(ids.sorted())) ORDER BY id FOR UPDATE")
    }

    /// Deletes message rows no queue refers to any more.
    private static func collect(_ tx: PostgresTransaction, messageIds: [Int64]) throws {
        guard !messageIds.isEmpty else { return }
        try tx.run("""
            DELETE FROM messages m WHERE m.id = ANY(\(messageIds)) AND NOT EXISTS (SELECT 1 FROM deliveries q WHERE q.message_id = m.id)
            """)
    }

    // MARK: - Sessions

    package func createSession(tokenHash: [UInt8], deviceId: UInt64, now: UInt64) throws(QPQServiceError) {
        try write { tx in
            try tx.run("INSERT INTO sessions(token_hash, device_id, created_at) VALUES (\(tokenHash.bytea), \(Self.i(deviceId)), \(Self.i(now)))")
        }
    }

    package func sessionDevice(tokenHash: [UInt8]) throws(QPQServiceError) -> UInt64? {
        try read { tx in try tx.int("SELECT device_id FROM sessions WHERE token_hash = \(tokenHash.bytea)").map(Self.u) }
    }

    package func deleteSession(tokenHash: [UInt8]) throws(QPQServiceError) {
        try write { tx in try tx.run("DELETE FROM sessions WHERE token_hash = \(tokenHash.bytea)") }
    }

    // MARK: - KeyPackages

    /// The device's one-time KeyPackages and whether it has a last-resort one, in one query.
    private static func counts(_ tx: PostgresTransaction, _ d: Int64) throws -> (oneTime: Int, hasLastResort: Bool) {
        guard let row = try tx.first("""
            SELECT COUNT(*) FILTER (WHERE NOT last_resort), COALESCE(BOOL_OR(last_resort), FALSE) FROM key_packages WHERE device_id = \(d)
            """) else { return (0, false) }
        let (oneTime, lastResort) = try row.decode((Int64, Bool).self)
        return (Int(oneTime), lastResort)
    }

    package func addKeyPackages(deviceId: UInt64, packages: [[UInt8]], lastResort: Bool) throws(QPQServiceError) -> (oneTime: Int, hasLastResort: Bool) {
        try write { tx in
            let d = Self.i(deviceId)
            // The device row's lock: the counts stay true until the upload commits (takeKeyPackages takes it too).
            _ = try tx.first("SELECT id FROM devices WHERE id = \(d) FOR UPDATE")
            let after = try QPQRequestChecks.keyPackageUpload(count: packages.count, lastResort: lastResort, stored: Self.counts(tx, d))
            if lastResort { try tx.run("DELETE FROM key_packages WHERE device_id = \(d) AND last_resort") }
            if !packages.isEmpty {
                // One statement; ids in upload order (one-time packages are handed out oldest first).
                try tx.run("""
                    INSERT INTO key_packages(device_id, package, last_resort)
                    SELECT \(d), p, \(lastResort) FROM UNNEST(\(packages.map(\.bytea))::BYTEA[]) WITH ORDINALITY AS t(p, n) ORDER BY n
                    """)
            }
            return after
        }
    }

    package func keyPackageCount(deviceId: UInt64) throws(QPQServiceError) -> (oneTime: Int, hasLastResort: Bool) {
        try read { tx in try Self.counts(tx, Self.i(deviceId)) }
    }

    package func takeKeyPackages(userId: UInt64) throws(QPQServiceError) -> [QPQDeviceKeyPackage] {
        try write { tx in
            // The device rows' locks: two nodes never hand out the same one-time package.
            let devices = try tx.ints("SELECT id FROM devices WHERE user_id = \(Self.i(userId)) AND NOT revoked ORDER BY id FOR UPDATE")
            guard !devices.isEmpty else { return [] }
            // Per device its oldest one-time package, else its last-resort one: one query for all devices.
            var out: [QPQDeviceKeyPackage] = []
            var taken: [Int64] = []
            for row in try tx.rows("""
                SELECT DISTINCT ON (device_id) device_id, id, package, last_resort FROM key_packages
                WHERE device_id = ANY(\(devices)) ORDER BY device_id, last_resort, id
                """) {
                let (d, id, package, lastResort) = try row.decode((Int64, Int64, ByteBuffer, Bool).self)
                if !lastResort { taken.append(id) }
                out.append(QPQDeviceKeyPackage(deviceId: Self.u(d), keyPackage: package.bytes))
            }
            if !taken.isEmpty { try tx.run("DELETE FROM key_packages WHERE id = ANY(\(taken))") }
            return out
        }
    }

    // MARK: - Groups and delivery

    package func createGroup(groupId: [UInt8], tokenHash: [UInt8], creator: UInt64, now: UInt64) throws(QPQServiceError) {
        try write { tx in
            let g = groupId.bytea
            let inserted = try tx.changes("""
                INSERT INTO chat_groups(id, epoch, token_hash, created_at) VALUES (\(g), 0, \(tokenHash.bytea), \(Self.i(now)))
                ON CONFLICT (id) DO NOTHING
                """)
            guard inserted == 1 else { throw QPQRequestChecks.groupExists }
            try tx.run("INSERT INTO members(group_id, device_id) VALUES (\(g), \(Self.i(creator)))")
        }
    }

    /// Reads the group's row, locking it until the transaction ends, and checks the epoch and the
    /// token (``QPQRequestChecks/group(_:epoch:tokenHash:)``); the row's timer serves ``enqueue``.
    @discardableResult
    private static func checkGroup(_ tx: PostgresTransaction, _ g: ByteBuffer, epoch: UInt64, tokenHash: [UInt8]) throws -> QPQGroupState {
        let stored = try tx.first("SELECT epoch, token_hash, ttl_seconds FROM chat_groups WHERE id = \(g) FOR UPDATE").map {
            let (e, hash, ttl) = try $0.decode((Int64, ByteBuffer, Int64).self)
            return QPQGroupState(epoch: u(e), tokenHash: hash.bytes, ttlSeconds: u(ttl))
        }
        return try QPQRequestChecks.group(stored, epoch: epoch, tokenHash: tokenHash)
    }

    private static func memberIds(_ tx: PostgresTransaction, _ g: ByteBuffer) throws -> [UInt64] {
        try tx.ints("SELECT device_id FROM members WHERE group_id = \(g) ORDER BY device_id").map(u)
    }

    /// Refuses the whole delivery if one recipient's queue is full (``QPQRequestChecks/queues(_:queued:)``;
    /// one query for all recipients, which returns only the queues at the limit: the rule decides).
    private static func checkQueues(_ tx: PostgresTransaction, _ devices: [UInt64]) throws {
        guard !devices.isEmpty else { return }
        var queued: [UInt64: Int] = [:]
        for row in try tx.rows("""
            SELECT device_id, COUNT(*) FROM deliveries WHERE device_id = ANY(\(devices.map(i))) GROUP BY device_id
            HAVING COUNT(*) >= \(Int64(QPQLimits.maxQueue))
            """) {
            let (d, n) = try row.decode((Int64, Int64).self)
            queued[u(d)] = Int(n)
        }
        try QPQRequestChecks.queues(devices, queued: queued)
    }

    /// Queues one message for `devices`: one INSERT ... RETURNING for the message, one for the deliveries.
    private static func enqueue(_ tx: PostgresTransaction, _ group: QPQGroupState, _ g: ByteBuffer, epoch: UInt64, kind: QPQEnvelopeKind,
                                payload: [UInt8], now: UInt64, to devices: [UInt64]) throws -> UInt64 {
        guard let id = try tx.int("""
            INSERT INTO messages(group_id, epoch, kind, server_time, payload, expires_at)
            VALUES (\(g), \(i(epoch)), \(Int16(kind.rawValue)), \(i(now)), \(payload.bytea), \(i(group.expiresAt(kind: kind, now: now)))) RETURNING id
            """) else { throw QPQServiceError(.internal, "storage: no message id") }
        if !devices.isEmpty {
            try tx.run("INSERT INTO deliveries(device_id, message_id) SELECT d, \(id) FROM UNNEST(\(devices.map(i))::BIGINT[]) AS t(d)")
        }
        return u(id)
    }

    /// The lock that orders every transaction that queues messages (see the type's documentation).
    private static func lockDeliveries(_ tx: PostgresTransaction) throws {
        try tx.run("SELECT pg_advisory_xact_lock(\(deliveryLock))")
    }

    package func commit(_ c: QPQCommitRequest, now: UInt64) throws(QPQServiceError) -> QPQDelivery {
        try write { tx in
            try Self.lockDeliveries(tx)
            let g = c.groupId.bytea
            let group = try Self.checkGroup(tx, g, epoch: c.epoch, tokenHash: c.tokenHash)
            let before = try Self.memberIds(tx, g)
            var live = Set<UInt64>()
            if !c.add.isEmpty {
                // One query (a group may add hundreds of devices); FOR SHARE against a concurrent revocation.
                live = Set(try tx.ints("SELECT id FROM devices WHERE id = ANY(\(c.add.map(Self.i))) AND NOT revoked ORDER BY id FOR SHARE").map(Self.u))
            }
            let plan = try QPQRequestChecks.commit(c, members: before, liveAdds: live)
            try Self.checkQueues(tx, plan.queues)
            // The epoch moves only if nobody moved it since the check (several writers, several nodes).
            let moved = try tx.changes("""
                UPDATE chat_groups SET epoch = epoch + 1, token_hash = \(c.nextTokenHash.bytea) WHERE id = \(g) AND epoch = \(Self.i(c.epoch))
                """)
            try QPQRequestChecks.epochUpdate(changed: moved, epoch: c.epoch)
            let messageId = try Self.enqueue(tx, group, g, epoch: c.epoch, kind: .commit, payload: c.commit, now: now, to: before)
            for w in c.welcomes {
                _ = try Self.enqueue(tx, group, g, epoch: c.epoch + 1, kind: .welcome, payload: w.welcome, now: now, to: [w.deviceId])
            }
            if !c.remove.isEmpty {
                try tx.run("DELETE FROM members WHERE group_id = \(g) AND device_id = ANY(\(c.remove.map(Self.i)))")
            }
            if !c.add.isEmpty {
                try tx.run("""
                    INSERT INTO members(group_id, device_id) SELECT \(g), d FROM UNNEST(\(c.add.map(Self.i))::BIGINT[]) AS t(d) ON CONFLICT DO NOTHING
                    """)
            }
            try notify(tx, kind: "d", plan.recipients)
            return QPQDelivery(messageId: messageId, epoch: c.epoch + 1, recipients: plan.recipients)
        }
    }

    package func send(groupId: [UInt8], epoch: UInt64, tokenHash: [UInt8], message: [UInt8], now: UInt64) throws(QPQServiceError) -> QPQDelivery {
        try write { tx in
            try Self.lockDeliveries(tx)
            let g = groupId.bytea
            let group = try Self.checkGroup(tx, g, epoch: epoch, tokenHash: tokenHash)
            let members = try Self.memberIds(tx, g)
            try Self.checkQueues(tx, members)
            let id = try Self.enqueue(tx, group, g, epoch: epoch, kind: .application, payload: message, now: now, to: members)
            try notify(tx, kind: "d", members)
            return QPQDelivery(messageId: id, epoch: epoch, recipients: members)
        }
    }

    package func setDisappearing(groupId: [UInt8], epoch: UInt64, tokenHash: [UInt8], seconds: UInt32) throws(QPQServiceError) {
        try write { tx in
            let g = groupId.bytea
            try Self.checkGroup(tx, g, epoch: epoch, tokenHash: tokenHash)
            try tx.run("UPDATE chat_groups SET ttl_seconds = \(Int64(seconds)) WHERE id = \(g)")
        }
    }

    package func expire(now: UInt64) throws(QPQServiceError) -> Int {
        try write { tx in
            // One statement: the expired messages (rows another node's expire holds are skipped), their
            // queue entries (deliveries has no ON DELETE CASCADE: deleted in the same statement, the
            // foreign key is checked at its end), and the expired blobs (blob_parts go by ON DELETE CASCADE).
            let t = Self.i(now)
            let n = try tx.int("""
                WITH gone AS (SELECT id FROM messages WHERE expires_at > 0 AND expires_at <= \(t) ORDER BY id FOR UPDATE SKIP LOCKED),
                     queued AS (DELETE FROM deliveries WHERE message_id IN (SELECT id FROM gone)),
                     dropped AS (DELETE FROM messages WHERE id IN (SELECT id FROM gone) RETURNING 1),
                     files AS (DELETE FROM blobs WHERE id IN (SELECT id FROM blobs WHERE expires_at <= \(t) FOR UPDATE SKIP LOCKED) RETURNING 1)
                SELECT (SELECT COUNT(*) FROM dropped) + (SELECT COUNT(*) FROM files)
                """) ?? 0
            return Int(n)
        }
    }

    // MARK: - Blobs

    private static func isMember(_ tx: PostgresTransaction, group: ByteBuffer, device: UInt64) throws -> Bool {
        try tx.first("SELECT 1 FROM members WHERE group_id = \(group) AND device_id = \(i(device))") != nil
    }

    package func createBlob(id: [UInt8], groupId: [UInt8], userId: UInt64, deviceId: UInt64, size: UInt64, now: UInt64,
                            limits: QPQRateLimits) throws(QPQServiceError) -> QPQBlobInfo {
        try write { tx in
            let g = groupId.bytea
            try QPQBlobQuota.checkSize(size, limits: limits)
            guard try Self.isMember(tx, group: g, device: deviceId) else {
                throw QPQServiceError(.unknownGroup, "no such group with this device as a member")
            }
            let user = Self.i(userId), live = Self.i(now)
            // The account row's lock: quota and rate are checked and charged in one step across nodes.
            _ = try tx.first("SELECT id FROM users WHERE id = \(user) FOR UPDATE")
            let used = Self.u(try tx.int("SELECT COALESCE(SUM(size), 0)::BIGINT FROM blobs WHERE user_id = \(user) AND expires_at > \(live)") ?? 0)
            let recent = try tx.ints("""
                SELECT created_at FROM blobs WHERE user_id = \(user) AND created_at > \(Self.i(QPQBlobQuota.windowStart(now: now)))
                ORDER BY created_at LIMIT \(limits.blobsPerHour)
                """)
            let info = try QPQBlobQuota.admit(size: size, used: used, recent: recent.map(Self.u), now: now, limits: limits)
            let inserted = try tx.changes("""
                INSERT INTO blobs(id, group_id, user_id, size, received, created_at, expires_at)
                VALUES (\(id.bytea), \(g), \(user), \(Self.i(size)), 0, \(live), \(Self.i(info.expiresAt))) ON CONFLICT (id) DO NOTHING
                """)
            guard inserted == 1 else { throw QPQServiceError(.internal, "storage: a blob with this id exists") }
            return info
        }
    }

    package func appendBlob(id: [UInt8], userId: UInt64, offset: UInt64, data: [UInt8], now: UInt64) throws(QPQServiceError) -> QPQBlobInfo {
        try write { tx in
            let b = id.bytea
            guard let row = try tx.first("SELECT size, received, expires_at, user_id FROM blobs WHERE id = \(b) AND expires_at > \(Self.i(now)) FOR UPDATE")
            else { throw QPQBlobInfo.unknown }
            let (size, received, expiresAt, owner) = try row.decode((Int64, Int64, Int64, Int64).self)
            guard Self.u(owner) == userId else { throw QPQBlobInfo.unknown }
            let info = try QPQBlobInfo(size: Self.u(size), received: Self.u(received), expiresAt: Self.u(expiresAt))
                .appending(offset: offset, count: data.count)
            try tx.run("INSERT INTO blob_parts(blob_id, \"offset\", data) VALUES (\(b), \(Self.i(offset)), \(data.bytea))")
            try tx.run("UPDATE blobs SET received = \(Self.i(info.received)) WHERE id = \(b)")
            return info
        }
    }

    package func blobInfo(id: [UInt8], userId: UInt64, deviceId: UInt64, now: UInt64) throws(QPQServiceError) -> QPQBlobInfo {
        try read { tx in
            guard let row = try tx.first("""
                SELECT size, received, expires_at, user_id, group_id FROM blobs WHERE id = \(id.bytea) AND expires_at > \(Self.i(now))
                """) else { throw QPQBlobInfo.unknown }
            let (size, received, expiresAt, owner, group) = try row.decode((Int64, Int64, Int64, Int64, ByteBuffer).self)
            let member = try Self.isMember(tx, group: group, device: deviceId)
            guard Self.u(owner) == userId || member else { throw QPQBlobInfo.unknown }
            return QPQBlobInfo(size: Self.u(size), received: Self.u(received), expiresAt: Self.u(expiresAt))
        }
    }

    package func readBlob(id: [UInt8], deviceId: UInt64, offset: UInt64, length: Int, now: UInt64) throws(QPQServiceError) -> [UInt8] {
        try read { tx in
            let b = id.bytea
            guard let row = try tx.first("SELECT size, received, expires_at, group_id FROM blobs WHERE id = \(b) AND expires_at > \(Self.i(now))")
            else { throw QPQBlobInfo.unknown }
            let (s, r, expiresAt, group) = try row.decode((Int64, Int64, Int64, ByteBuffer).self)
            guard try Self.isMember(tx, group: group, device: deviceId) else { throw QPQBlobInfo.unknown }
            let range = try QPQBlobRange(QPQBlobInfo(size: Self.u(s), received: Self.u(r), expiresAt: Self.u(expiresAt)), offset: offset, length: length)
            let parts = try tx.rows("""
                SELECT "offset", data FROM blob_parts WHERE blob_id = \(b) AND "offset" >= \(Self.i(range.firstPart)) AND "offset" < \(Self.i(range.end))
                ORDER BY "offset"
                """)
            return try range.splice(parts.map {
                let (o, data) = try $0.decode((Int64, ByteBuffer).self)
                return (Self.u(o), data.bytes)
            })
        }
    }

    package func groups(deviceId: UInt64) throws(QPQServiceError) -> [QPQGroupSummary] {
        try read { tx in
            try tx.rows("""
                SELECT g.id, g.epoch, (SELECT COUNT(*) FROM members m2 WHERE m2.group_id = g.id) AS n
                FROM chat_groups g JOIN members m ON m.group_id = g.id WHERE m.device_id = \(Self.i(deviceId)) ORDER BY g.created_at, g.id
                LIMIT \(QPQLimits.maxMembers)
                """).map {
                let (id, epoch, n) = try $0.decode((ByteBuffer, Int64, Int64).self)
                return QPQGroupSummary(groupId: id.bytes, epoch: Self.u(epoch), memberCount: UInt32(clamping: n))
            }
        }
    }

    package func members(groupId: [UInt8]) throws(QPQServiceError) -> (epoch: UInt64, members: [QPQMember])? {
        try read { tx in
            let g = groupId.bytea
            guard let epoch = try tx.int("SELECT epoch FROM chat_groups WHERE id = \(g)") else { return nil }
            let rows = try tx.rows("""
                SELECT m.device_id, d.user_id, u.name FROM members m JOIN devices d ON d.id = m.device_id
                JOIN users u ON u.id = d.user_id WHERE m.group_id = \(g) ORDER BY m.device_id
                """)
            return (Self.u(epoch), try rows.map {
                let (device, user, name) = try $0.decode((Int64, Int64, String).self)
                return QPQMember(deviceId: Self.u(device), userId: Self.u(user), user: name)
            })
        }
    }

    // MARK: - Queues

    package func fetch(deviceId: UInt64, after: UInt64, limit: Int, maxBytes: Int) throws(QPQServiceError) -> (envelopes: [QPQEnvelope], more: Bool) {
        try read { tx in try Self.fetch(tx, deviceId: deviceId, after: after, limit: limit, maxBytes: maxBytes) }
    }

    package func fetchMany(_ requests: [(deviceId: UInt64, after: UInt64)], limit: Int, maxBytes: Int) throws(QPQServiceError)
        -> [(envelopes: [QPQEnvelope], more: Bool)] {
        try read { tx in
            try requests.map { try Self.fetch(tx, deviceId: $0.deviceId, after: $0.after, limit: limit, maxBytes: maxBytes) }
        }
    }

    private static func fetch(_ tx: PostgresTransaction, deviceId: UInt64, after: UInt64, limit: Int, maxBytes: Int) throws
        -> (envelopes: [QPQEnvelope], more: Bool) {
        var page = QPQFetchPage(limit: limit, maxBytes: maxBytes)
        let rows = try tx.rows("""
            SELECT m.id, m.group_id, m.epoch, m.kind, m.server_time, m.expires_at, m.payload FROM deliveries q
            JOIN messages m ON m.id = q.message_id WHERE q.device_id = \(i(deviceId)) AND q.message_id > \(QPQFetchPage.cursor(after: after))
            ORDER BY q.message_id LIMIT \(page.rowLimit)
            """)
        for row in rows {
            let (id, group, epoch, kind, serverTime, expiresAt, payload) =
                try row.decode((Int64, ByteBuffer, Int64, Int16, Int64, Int64, ByteBuffer).self)
            let e = QPQEnvelope(messageId: u(id), groupId: group.bytes, epoch: u(epoch),
                                kind: QPQEnvelopeKind(rawValue: UInt8(clamping: kind)) ?? .application,
                                serverTime: u(serverTime), expiresAt: u(expiresAt), payload: payload.bytes)
            guard page.add(e) else { break }
        }
        return page.result
    }

    package func ack(deviceId: UInt64, messageIds: [UInt64]) throws(QPQServiceError) -> Int {
        try write { tx in
            let ids = Set(messageIds).map(Self.i).sorted()
            guard !ids.isEmpty else { return 0 }
            try Self.lockMessages(tx, ids)
            let gone = try tx.ints("DELETE FROM deliveries WHERE device_id = \(Self.i(deviceId)) AND message_id = ANY(\(ids)) RETURNING message_id")
            try Self.collect(tx, messageIds: gone)
            return gone.count
        }
    }
}
