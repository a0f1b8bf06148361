import Foundation
import GRDB
import QPQProtocol

/// ``QPQStore`` on SQLite through GRDB: a `DatabasePool` (WAL journal, readers beside one writer)
/// on a file. The schema is docs/messaging.md §9. A commit's epoch check is the
/// `UPDATE ... WHERE epoch = ?` of its own transaction, so two writers cannot both win an epoch.
/// The decisions are the shared rules (``QPQRequestChecks``, ``QPQBlobQuota``, ``QPQBlobRange``,
/// ``QPQFetchPage``, ``QPQBlobInfo/appending(offset:count:)``) that `PostgresStore` calls too.
package final class GRDBStore: QPQStore {
    private let db: any DatabaseWriter

    /// How a commit reaches the disk (SQLite's `synchronous` in WAL mode).
    package enum Durability: String, Sendable, CaseIterable {
        /// fsync at every commit: an accepted message survives a power loss.
        case full
        /// fsync at checkpoints only: an accepted message survives a crash or restart of qpqd, but
        /// the last commits may be lost if the machine loses power.
        case normal
    }

    /// Opens (creating if needed) the database at `path` in WAL mode, file mode 0600.
    package init(path: String, durability: Durability = .full) throws(QPQServiceError) {
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.foreignKeysEnabled = true
        // Deleted rows (expired messages, acknowledged queues) are overwritten, not left in free pages.
        let synchronous = durability == .full ? "FULL" : "NORMAL"
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        }
        do {
            let created = !FileManager.default.fileExists(atPath: path)
            let pool = try DatabasePool(path: path, configuration: config)
            if created { chmod(path, 0o600) }
            db = pool
            try Self.migrator.migrate(pool)
        } catch {
            throw QPQServiceError(.internal, "cannot open the database \(path): \(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE users(
                    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
                    record BLOB NOT NULL, created_at INTEGER NOT NULL);
                CREATE TABLE devices(
                    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER NOT NULL REFERENCES users(id),
                    name TEXT NOT NULL, identity_key BLOB NOT NULL, created_at INTEGER NOT NULL,
                    revoked INTEGER NOT NULL DEFAULT 0);
                CREATE INDEX devices_user ON devices(user_id);
                CREATE TABLE sessions(
                    token_hash BLOB PRIMARY KEY, device_id INTEGER NOT NULL REFERENCES devices(id),
                    created_at INTEGER NOT NULL);
                CREATE INDEX sessions_device ON sessions(device_id);
                CREATE TABLE key_packages(
                    id INTEGER PRIMARY KEY AUTOINCREMENT, device_id INTEGER NOT NULL REFERENCES devices(id),
                    package BLOB NOT NULL, last_resort INTEGER NOT NULL);
                CREATE INDEX key_packages_device ON key_packages(device_id, last_resort, id);
                CREATE TABLE chat_groups(
                    id BLOB PRIMARY KEY, epoch INTEGER NOT NULL, token_hash BLOB NOT NULL, created_at INTEGER NOT NULL);
                CREATE TABLE members(
                    group_id BLOB NOT NULL REFERENCES chat_groups(id), device_id INTEGER NOT NULL REFERENCES devices(id),
                    PRIMARY KEY(group_id, device_id)) WITHOUT ROWID;
                CREATE INDEX members_device ON members(device_id);
                CREATE TABLE messages(
                    id INTEGER PRIMARY KEY AUTOINCREMENT, group_id BLOB NOT NULL, epoch INTEGER NOT NULL,
                    kind INTEGER NOT NULL, server_time INTEGER NOT NULL, payload BLOB NOT NULL);
                CREATE TABLE deliveries(
                    device_id INTEGER NOT NULL, message_id INTEGER NOT NULL REFERENCES messages(id),
                    PRIMARY KEY(device_id, message_id)) WITHOUT ROWID;
                CREATE INDEX deliveries_message ON deliveries(message_id);
                """)
        }
        m.registerMigration("v2 disappearing messages") { db in
            try db.execute(sql: """
                ALTER TABLE chat_groups ADD COLUMN ttl_seconds INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE messages ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX messages_expiry ON messages(expires_at) WHERE expires_at > 0;
                """)
        }
        m.registerMigration("v3 blobs") { db in
            try db.execute(sql: """
                CREATE TABLE blobs(
                    id BLOB PRIMARY KEY, group_id BLOB NOT NULL, user_id INTEGER NOT NULL REFERENCES users(id),
                    size INTEGER NOT NULL, received INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL) WITHOUT ROWID;
                CREATE INDEX blobs_user ON blobs(user_id, created_at);
                CREATE INDEX blobs_expiry ON blobs(expires_at);
                CREATE TABLE blob_parts(
                    blob_id BLOB NOT NULL REFERENCES blobs(id) ON DELETE CASCADE, offset INTEGER NOT NULL, data BLOB NOT NULL,
                    PRIMARY KEY(blob_id, offset)) WITHOUT ROWID;
                """)
        }
        return m
    }

    // MARK: - Helpers

    /// Runs `body` in one write transaction; a ``QPQServiceError`` thrown inside rolls back and is rethrown.
    private func write<T>(_ body: (Database) throws -> T) throws(QPQServiceError) -> T {
        do {
            return try db.write(body)
        } catch let e as QPQServiceError {
            throw e
        } catch {
            throw QPQServiceError(.internal, "storage: \(error)")
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws(QPQServiceError) -> T {
        do {
            return try db.read(body)
        } catch let e as QPQServiceError {
            throw e
        } catch {
            throw QPQServiceError(.internal, "storage: \(error)")
        }
    }

    private static func i(_ v: UInt64) -> Int64 { Int64(bitPattern: v) }
    private static func u(_ v: Int64) -> UInt64 { UInt64(bitPattern: v) }
    private static func blob(_ b: [UInt8]) -> Data { Data(b) }
    private static func bytes(_ row: Row, _ column: String) -> [UInt8] {
        (row[column] as Data?).map { [UInt8]($0) } ?? []
    }
    private static func int(_ row: Row, _ column: String) -> Int64 { (row[column] as Int64?) ?? 0 }

    private static func device(_ row: Row) -> QPQStoredDevice {
        QPQStoredDevice(id: u(int(row, "id")), userId: u(int(row, "user_id")), name: (row["name"] as String?) ?? "",
                        identityKey: bytes(row, "identity_key"), createdAt: u(int(row, "created_at")), revoked: int(row, "revoked") != 0)
    }

    // MARK: - Accounts and devices

    package func createUser(name: String, record: [UInt8], now: UInt64) throws(QPQServiceError) -> UInt64 {
        try write { db in
            if try Row.fetchOne(db, sql: "SELECT id FROM users WHERE name = ?", arguments: [name]) != nil {
                throw QPQRequestChecks.userExists(name)
            }
            try db.execute(sql: "INSERT INTO users(name, record, created_at) VALUES (?, ?, ?)",
                           arguments: [name, Self.blob(record), Self.i(now)])
            return Self.u(db.lastInsertedRowID)
        }
    }

    package func user(named name: String) throws(QPQServiceError) -> QPQStoredUser? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT id, name, record FROM users WHERE name = ?", arguments: [name]).map {
                QPQStoredUser(id: Self.u(Self.int($0, "id")), name: name, record: Self.bytes($0, "record"))
            }
        }
    }

    package func userName(id: UInt64) throws(QPQServiceError) -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT name FROM users WHERE id = ?", arguments: [Self.i(id)]) }
    }

    package func device(id: UInt64) throws(QPQServiceError) -> QPQStoredDevice? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM devices WHERE id = ?", arguments: [Self.i(id)]).map(Self.device)
        }
    }

    package func liveDevices(userId: UInt64) throws(QPQServiceError) -> [QPQStoredDevice] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM devices WHERE user_id = ? AND revoked = 0 ORDER BY id",
                             arguments: [Self.i(userId)]).map(Self.device)
        }
    }

    package func addDevice(userId: UInt64, name: String, identityKey: [UInt8], now: UInt64) throws(QPQServiceError) -> UInt64 {
        try write { db in
            let live = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM devices WHERE user_id = ? AND revoked = 0",
                                        arguments: [Self.i(userId)]) ?? 0
            try QPQRequestChecks.deviceLimit(live: live)
            try db.execute(sql: "INSERT INTO devices(user_id, name, identity_key, created_at) VALUES (?, ?, ?, ?)",
                           arguments: [Self.i(userId), name, Self.blob(identityKey), Self.i(now)])
            return Self.u(db.lastInsertedRowID)
        }
    }

    package func revokeDevice(userId: UInt64, deviceId: UInt64) throws(QPQServiceError) {
        try write { db in
            let d = Self.i(deviceId)
            let row = try Row.fetchOne(db, sql: "SELECT user_id, revoked FROM devices WHERE id = ?", arguments: [d])
            try QPQRequestChecks.revocation(row.map { (Self.u(Self.int($0, "user_id")), Self.int($0, "revoked") != 0) },
                                            userId: userId, deviceId: deviceId)
            try db.execute(sql: "UPDATE devices SET revoked = 1 WHERE id = ?", arguments: [d])
            try db.execute(sql: "DELETE FROM sessions WHERE device_id = ?", arguments: [d])
            try db.execute(sql: "DELETE FROM key_packages WHERE device_id = ?", arguments: [d])
            try db.execute(sql: "DELETE FROM members WHERE device_id = ?", arguments: [d])
            let queued = try Int64.fetchAll(db, sql: "SELECT message_id FROM deliveries WHERE device_id = ?", arguments: [d])
            try db.execute(sql: "DELETE FROM deliveries WHERE device_id = ?", arguments: [d])
            try Self.collect(db, messageIds: queued)
        }
    }

    /// Deletes message rows no queue refers to any more.
    private static func collect(_ db: Database, messageIds: [Int64]) throws {
        for id in messageIds {
            try db.execute(sql: "DELETE FROM messages WHERE id = ? AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = ?)",
                           arguments: [id, id])
        }
    }

    // MARK: - Sessions

    package func createSession(tokenHash: [UInt8], deviceId: UInt64, now: UInt64) throws(QPQServiceError) {
        try write { db in
            try db.execute(sql: "INSERT INTO sessions(token_hash, device_id, created_at) VALUES (?, ?, ?)",
                           arguments: [Self.blob(tokenHash), Self.i(deviceId), Self.i(now)])
        }
    }

    package func sessionDevice(tokenHash: [UInt8]) throws(QPQServiceError) -> UInt64? {
        try read { db in
            try Int64.fetchOne(db, sql: "SELECT device_id FROM sessions WHERE token_hash = ?", arguments: [Self.blob(tokenHash)]).map(Self.u)
        }
    }

    package func deleteSession(tokenHash: [UInt8]) throws(QPQServiceError) {
        try write { db in try db.execute(sql: "DELETE FROM sessions WHERE token_hash = ?", arguments: [Self.blob(tokenHash)]) }
    }

    // MARK: - KeyPackages

    private static func counts(_ db: Database, _ d: Int64) throws -> (oneTime: Int, hasLastResort: Bool) {
        let row = try Row.fetchOne(db, sql: """
            SELECT COALESCE(SUM(last_resort = 0), 0) AS one_time, COALESCE(MAX(last_resort), 0) AS last_resort
            FROM key_packages WHERE device_id = ?
            """, arguments: [d])
        return (Int(row.map { int($0, "one_time") } ?? 0), (row.map { int($0, "last_resort") } ?? 0) != 0)
    }

    package func addKeyPackages(deviceId: UInt64, packages: [[UInt8]], lastResort: Bool) throws(QPQServiceError) -> (oneTime: Int, hasLastResort: Bool) {
        try write { db in
            let d = Self.i(deviceId)
            let after = try QPQRequestChecks.keyPackageUpload(count: packages.count, lastResort: lastResort, stored: Self.counts(db, d))
            if lastResort { try db.execute(sql: "DELETE FROM key_packages WHERE device_id = ? AND last_resort = 1", arguments: [d]) }
            for p in packages {
                try db.execute(sql: "INSERT INTO key_packages(device_id, package, last_resort) VALUES (?, ?, ?)",
                               arguments: [d, Self.blob(p), lastResort ? 1 : 0])
            }
            return after
        }
    }

    package func keyPackageCount(deviceId: UInt64) throws(QPQServiceError) -> (oneTime: Int, hasLastResort: Bool) {
        try read { db in try Self.counts(db, Self.i(deviceId)) }
    }

    package func takeKeyPackages(userId: UInt64) throws(QPQServiceError) -> [QPQDeviceKeyPackage] {
        try write { db in
            var out: [QPQDeviceKeyPackage] = []
            let devices = try Int64.fetchAll(db, sql: "SELECT id FROM devices WHERE user_id = ? AND revoked = 0 ORDER BY id",
                                             arguments: [Self.i(userId)])
            for d in devices {
                guard let row = try Row.fetchOne(db, sql: """
                    SELECT id, package, last_resort FROM key_packages WHERE device_id = ?
                    ORDER BY last_resort, id LIMIT 1
                    """, arguments: [d]) else { continue }
                if Self.int(row, "last_resort") == 0 {
                    try db.execute(sql: "DELETE FROM key_packages WHERE id = ?", arguments: [Self.int(row, "id")])
                }
                out.append(QPQDeviceKeyPackage(deviceId: Self.u(d), keyPackage: Self.bytes(row, "package")))
            }
            return out
        }
    }

    // MARK: - Groups and delivery

    package func createGroup(groupId: [UInt8], tokenHash: [UInt8], creator: UInt64, now: UInt64) throws(QPQServiceError) {
        try write { db in
            let g = Self.blob(groupId)
            if try Row.fetchOne(db, sql: "SELECT 1 FROM chat_groups WHERE id = ?", arguments: [g]) != nil {
                throw QPQRequestChecks.groupExists
            }
            try db.execute(sql: "INSERT INTO chat_groups(id, epoch, token_hash, created_at) VALUES (?, 0, ?, ?)",
                           arguments: [g, Self.blob(tokenHash), Self.i(now)])
            try db.execute(sql: "INSERT INTO members(group_id, device_id) VALUES (?, ?)", arguments: [g, Self.i(creator)])
        }
    }

    /// Reads the group's row and checks the epoch and the token (``QPQRequestChecks/group(_:epoch:tokenHash:)``).
    @discardableResult
    private static func checkGroup(_ db: Database, _ g: Data, epoch: UInt64, tokenHash: [UInt8]) throws -> QPQGroupState {
        let row = try Row.fetchOne(db, sql: "SELECT epoch, token_hash, ttl_seconds FROM chat_groups WHERE id = ?", arguments: [g])
        return try QPQRequestChecks.group(row.map { QPQGroupState(epoch: u(int($0, "epoch")), tokenHash: bytes($0, "token_hash"),
                                                                  ttlSeconds: u(int($0, "ttl_seconds"))) },
                                          epoch: epoch, tokenHash: tokenHash)
    }

    private static func memberIds(_ db: Database, _ g: Data) throws -> [UInt64] {
        try Int64.fetchAll(db, sql: "SELECT device_id FROM members WHERE group_id = ? ORDER BY device_id", arguments: [g]).map(u)
    }

    /// Refuses the whole delivery if one recipient's queue is full (``QPQRequestChecks/queues(_:queued:)``).
    private static func checkQueues(_ db: Database, _ devices: [UInt64]) throws {
        var queued: [UInt64: Int] = [:]
        for d in Set(devices) {
            queued[d] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM deliveries WHERE device_id = ?", arguments: [i(d)]) ?? 0
        }
        try QPQRequestChecks.queues(devices, queued: queued)
    }

    private static func enqueue(_ db: Database, _ group: QPQGroupState, _ g: Data, epoch: UInt64, kind: QPQEnvelopeKind, payload: [UInt8],
                                now: UInt64, to devices: [UInt64]) throws -> UInt64 {
        try db.execute(sql: "INSERT INTO messages(group_id, epoch, kind, server_time, payload, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [g, i(epoch), Int64(kind.rawValue), i(now), blob(payload), i(group.expiresAt(kind: kind, now: now))])
        let id = db.lastInsertedRowID
        for d in devices {
            try db.execute(sql: "INSERT INTO deliveries(device_id, message_id) VALUES (?, ?)", arguments: [i(d), id])
        }
        return u(id)
    }

    package func commit(_ c: QPQCommitRequest, now: UInt64) throws(QPQServiceError) -> QPQDelivery {
        try write { db in
            let g = Self.blob(c.groupId)
            let group = try Self.checkGroup(db, g, epoch: c.epoch, tokenHash: c.tokenHash)
            let before = try Self.memberIds(db, g)
            var live = Set<UInt64>()
            for d in c.add where try Int64.fetchOne(db, sql: "SELECT revoked FROM devices WHERE id = ?", arguments: [Self.i(d)]) == 0 {
                live.insert(d)
            }
            let plan = try QPQRequestChecks.commit(c, members: before, liveAdds: live)
            try Self.checkQueues(db, plan.queues)
            // The epoch moves only if nobody moved it since the check (several writers, several nodes).
            try db.execute(sql: "UPDATE chat_groups SET epoch = epoch + 1, token_hash = ? WHERE id = ? AND epoch = ?",
                           arguments: [Self.blob(c.nextTokenHash), g, Self.i(c.epoch)])
            try QPQRequestChecks.epochUpdate(changed: db.changesCount, epoch: c.epoch)
            let messageId = try Self.enqueue(db, group, g, epoch: c.epoch, kind: .commit, payload: c.commit, now: now, to: before)
            for w in c.welcomes {
                _ = try Self.enqueue(db, group, g, epoch: c.epoch + 1, kind: .welcome, payload: w.welcome, now: now, to: [w.deviceId])
            }
            for d in c.remove { try db.execute(sql: "DELETE FROM members WHERE group_id = ? AND device_id = ?", arguments: [g, Self.i(d)]) }
            for d in c.add {
                try db.execute(sql: "INSERT OR IGNORE INTO members(group_id, device_id) VALUES (?, ?)", arguments: [g, Self.i(d)])
            }
            return QPQDelivery(messageId: messageId, epoch: c.epoch + 1, recipients: plan.recipients)
        }
    }

    package func send(groupId: [UInt8], epoch: UInt64, tokenHash: [UInt8], message: [UInt8], now: UInt64) throws(QPQServiceError) -> QPQDelivery {
        try write { db in
            let g = Self.blob(groupId)
            let group = try Self.checkGroup(db, g, epoch: epoch, tokenHash: tokenHash)
            let members = try Self.memberIds(db, g)
            try Self.checkQueues(db, members)
            let id = try Self.enqueue(db, group, g, epoch: epoch, kind: .application, payload: message, now: now, to: members)
            return QPQDelivery(messageId: id, epoch: epoch, recipients: members)
        }
    }

    package func setDisappearing(groupId: [UInt8], epoch: UInt64, tokenHash: [UInt8], seconds: UInt32) throws(QPQServiceError) {
        try write { db in
            let g = Self.blob(groupId)
            try Self.checkGroup(db, g, epoch: epoch, tokenHash: tokenHash)
            try db.execute(sql: "UPDATE chat_groups SET ttl_seconds = ? WHERE id = ?", arguments: [Int64(seconds), g])
        }
    }

    package func expire(now: UInt64) throws(QPQServiceError) -> Int {
        let n: Int = try write { db in
            let t = Self.i(now)
            try db.execute(sql: """
                DELETE FROM deliveries WHERE message_id IN (SELECT id FROM messages WHERE expires_at > 0 AND expires_at <= ?)
                """, arguments: [t])
            try db.execute(sql: "DELETE FROM messages WHERE expires_at > 0 AND expires_at <= ?", arguments: [t])
            let messages = db.changesCount
            // blob_parts go with their blob (ON DELETE CASCADE).
            try db.execute(sql: "DELETE FROM blobs WHERE expires_at <= ?", arguments: [t])
            return messages + db.changesCount
        }
        if n > 0 {
            // Old copies of the rows in the write-ahead log go too.
            do { try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") } } catch {
                throw QPQServiceError(.internal, "storage: checkpoint: \(error)")
            }
        }
        return n
    }

    // MARK: - Blobs

    private static func blobInfo(_ row: Row) -> QPQBlobInfo {
        QPQBlobInfo(size: u(int(row, "size")), received: u(int(row, "received")), expiresAt: u(int(row, "expires_at")))
    }

    private static func isMember(_ db: Database, group: Data, device: UInt64) throws -> Bool {
        try Row.fetchOne(db, sql: "SELECT 1 FROM members WHERE group_id = ? AND device_id = ?", arguments: [group, i(device)]) != nil
    }

    package func createBlob(id: [UInt8], groupId: [UInt8], userId: UInt64, deviceId: UInt64, size: UInt64, now: UInt64,
                            limits: QPQRateLimits) throws(QPQServiceError) -> QPQBlobInfo {
        try write { db in
            let g = Self.blob(groupId)
            try QPQBlobQuota.checkSize(size, limits: limits)
            guard try Self.isMember(db, group: g, device: deviceId) else {
                throw QPQServiceError(.unknownGroup, "no such group with this device as a member")
            }
            let live = Self.i(now)
            let used = Self.u(try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(size), 0) FROM blobs WHERE user_id = ? AND expires_at > ?",
                                                 arguments: [Self.i(userId), live]) ?? 0)
            let recent = try Int64.fetchAll(db, sql: """
                SELECT created_at FROM blobs WHERE user_id = ? AND created_at > ? ORDER BY created_at LIMIT ?
                """, arguments: [Self.i(userId), Self.i(QPQBlobQuota.windowStart(now: now)), limits.blobsPerHour])
            let info = try QPQBlobQuota.admit(size: size, used: used, recent: recent.map(Self.u), now: now, limits: limits)
            try db.execute(sql: "INSERT INTO blobs(id, group_id, user_id, size, received, created_at, expires_at) VALUES (?, ?, ?, ?, 0, ?, ?)",
                           arguments: [Self.blob(id), g, Self.i(userId), Self.i(size), live, Self.i(info.expiresAt)])
            return info
        }
    }

    package func appendBlob(id: [UInt8], userId: UInt64, offset: UInt64, data: [UInt8], now: UInt64) throws(QPQServiceError) -> QPQBlobInfo {
        try write { db in
            let b = Self.blob(id)
            guard let row = try Row.fetchOne(db, sql: "SELECT size, received, expires_at, user_id FROM blobs WHERE id = ? AND expires_at > ?",
                                             arguments: [b, Self.i(now)]),
                  Self.u(Self.int(row, "user_id")) == userId else { throw QPQBlobInfo.unknown }
            let info = try Self.blobInfo(row).appending(offset: offset, count: data.count)
            try db.execute(sql: "INSERT INTO blob_parts(blob_id, offset, data) VALUES (?, ?, ?)", arguments: [b, Self.i(offset), Self.blob(data)])
            try db.execute(sql: "UPDATE blobs SET received = ? WHERE id = ?", arguments: [Self.i(info.received), b])
            return info
        }
    }

    package func blobInfo(id: [UInt8], userId: UInt64, deviceId: UInt64, now: UInt64) throws(QPQServiceError) -> QPQBlobInfo {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT size, received, expires_at, user_id, group_id FROM blobs WHERE id = ? AND expires_at > ?
                """, arguments: [Self.blob(id), Self.i(now)]) else { throw QPQBlobInfo.unknown }
            let member = try Self.isMember(db, group: Data(Self.bytes(row, "group_id")), device: deviceId)
            guard Self.u(Self.int(row, "user_id")) == userId || member else { throw QPQBlobInfo.unknown }
            return Self.blobInfo(row)
        }
    }

    package func readBlob(id: [UInt8], deviceId: UInt64, offset: UInt64, length: Int, now: UInt64) throws(QPQServiceError) -> [UInt8] {
        try read { db in
            let b = Self.blob(id)
            guard let row = try Row.fetchOne(db, sql: "SELECT size, received, expires_at, group_id FROM blobs WHERE id = ? AND expires_at > ?",
                                             arguments: [b, Self.i(now)]),
                  try Self.isMember(db, group: Data(Self.bytes(row, "group_id")), device: deviceId) else { throw QPQBlobInfo.unknown }
            let range = try QPQBlobRange(Self.blobInfo(row), offset: offset, length: length)
            let parts = try Row.fetchAll(db, sql: """
                SELECT offset, data FROM blob_parts WHERE blob_id = ? AND offset >= ? AND offset < ? ORDER BY offset
                """, arguments: [b, Self.i(range.firstPart), Self.i(range.end)])
            return try range.splice(parts.map { (Self.u(Self.int($0, "offset")), Self.bytes($0, "data")) })
        }
    }

    package func groups(deviceId: UInt64) throws(QPQServiceError) -> [QPQGroupSummary] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT g.id, g.epoch, (SELECT COUNT(*) FROM members m2 WHERE m2.group_id = g.id) AS n
                FROM chat_groups g JOIN members m ON m.group_id = g.id WHERE m.device_id = ? ORDER BY g.created_at, g.id
                LIMIT ?
                """, arguments: [Self.i(deviceId), QPQLimits.maxMembers]).map {
                QPQGroupSummary(groupId: Self.bytes($0, "id"), epoch: Self.u(Self.int($0, "epoch")), memberCount: UInt32(clamping: Self.int($0, "n")))
            }
        }
    }

    package func members(groupId: [UInt8]) throws(QPQServiceError) -> (epoch: UInt64, members: [QPQMember])? {
        try read { db in
            let g = Self.blob(groupId)
            guard let epoch = try Int64.fetchOne(db, sql: "SELECT epoch FROM chat_groups WHERE id = ?", arguments: [g]) else { return nil }
            let rows = try Row.fetchAll(db, sql: """
                SELECT m.device_id, d.user_id, u.name FROM members m JOIN devices d ON d.id = m.device_id
                JOIN users u ON u.id = d.user_id WHERE m.group_id = ? ORDER BY m.device_id
                """, arguments: [g])
            return (Self.u(epoch), rows.map {
                QPQMember(deviceId: Self.u(Self.int($0, "device_id")), userId: Self.u(Self.int($0, "user_id")), user: ($0["name"] as String?) ?? "")
            })
        }
    }

    // MARK: - Queues

    package func fetch(deviceId: UInt64, after: UInt64, limit: Int, maxBytes: Int) throws(QPQServiceError) -> (envelopes: [QPQEnvelope], more: Bool) {
        try read { db in try Self.fetch(db, deviceId: deviceId, after: after, limit: limit, maxBytes: maxBytes) }
    }

    package func fetchMany(_ requests: [(deviceId: UInt64, after: UInt64)], limit: Int, maxBytes: Int) throws(QPQServiceError)
        -> [(envelopes: [QPQEnvelope], more: Bool)] {
        try read { db in
            try requests.map { try Self.fetch(db, deviceId: $0.deviceId, after: $0.after, limit: limit, maxBytes: maxBytes) }
        }
    }

    private static func fetch(_ db: Database, deviceId: UInt64, after: UInt64, limit: Int, maxBytes: Int) throws
        -> (envelopes: [QPQEnvelope], more: Bool) {
        var page = QPQFetchPage(limit: limit, maxBytes: maxBytes)
        let rows = try Row.fetchCursor(db, sql: """
            SELECT m.id, m.group_id, m.epoch, m.kind, m.server_time, m.expires_at, m.payload FROM deliveries q
            JOIN messages m ON m.id = q.message_id WHERE q.device_id = ? AND q.message_id > ? ORDER BY q.message_id LIMIT ?
            """, arguments: [Self.i(deviceId), QPQFetchPage.cursor(after: after), page.rowLimit])
        while let row = try rows.next() {
            let e = QPQEnvelope(messageId: Self.u(Self.int(row, "id")), groupId: Self.bytes(row, "group_id"),
                                epoch: Self.u(Self.int(row, "epoch")),
                                kind: QPQEnvelopeKind(rawValue: UInt8(clamping: Self.int(row, "kind"))) ?? .application,
                                serverTime: Self.u(Self.int(row, "server_time")), expiresAt: Self.u(Self.int(row, "expires_at")),
                                payload: Self.bytes(row, "payload"))
            guard page.add(e) else { break }
        }
        return page.result
    }

    package func ack(deviceId: UInt64, messageIds: [UInt64]) throws(QPQServiceError) -> Int {
        try write { db in
            var deleted = 0
            var gone: [Int64] = []
            for id in Set(messageIds) {
                let m = Self.i(id)
                try db.execute(sql: "DELETE FROM deliveries WHERE device_id = ? AND message_id = ?", arguments: [Self.i(deviceId), m])
                if db.changesCount > 0 {
                    deleted += 1
                    gone.append(m)
                }
            }
            try Self.collect(db, messageIds: gone)
            return deleted
        }
    }
}
