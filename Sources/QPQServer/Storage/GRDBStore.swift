import Foundation
import GRDB
import QPQProtocol

/// ``QPQStore`` on SQLite through GRDB: a `DatabasePool` (WAL journal, readers beside one writer)
/// on a file. The schema is docs/messaging.md §9. A commit's epoch check is the
/// `UPDATE ... WHERE epoch = ?` of its own transaction, so two writers cannot both win an epoch.
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
                throw QPQServiceError(.userExists, "the user name \(name) is taken")
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
            guard live < QPQLimits.maxDevices else {
                throw QPQServiceError(.limitExceeded, "an account has at most \(QPQLimits.maxDevices) devices; revoke one first")
            }
            try db.execute(sql: "INSERT INTO devices(user_id, name, identity_key, created_at) VALUES (?, ?, ?, ?)",
                           arguments: [Self.i(userId), name, Self.blob(identityKey), Self.i(now)])
            return Self.u(db.lastInsertedRowID)
        }
    }

    package func revokeDevice(userId: UInt64, deviceId: UInt64) throws(QPQServiceError) {
        try write { db in
            let d = Self.i(deviceId)
            guard let row = try Row.fetchOne(db, sql: "SELECT user_id, revoked FROM devices WHERE id = ?", arguments: [d]),
                  Self.u(Self.int(row, "user_id")) == userId else {
                throw QPQServiceError(.unknownDevice, "no device \(deviceId) in this account")
            }
            guard Self.int(row, "revoked") == 0 else { throw QPQServiceError(.deviceRevoked, "device \(deviceId) is already revoked") }
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
        let oneTime = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM key_packages WHERE device_id = ? AND last_resort = 0", arguments: [d]) ?? 0
        let lastResort = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM key_packages WHERE device_id = ? AND last_resort = 1", arguments: [d]) ?? 0
        return (oneTime, lastResort > 0)
    }

    package func addKeyPackages(deviceId: UInt64, packages: [[UInt8]], lastResort: Bool) throws(QPQServiceError) -> (oneTime: Int, hasLastResort: Bool) {
        try write { db in
            let d = Self.i(deviceId)
            if lastResort {
                guard packages.count == 1 else {
                    throw QPQServiceError(.malformed, "a last-resort upload carries exactly one package")
                }
                try db.execute(sql: "DELETE FROM key_packages WHERE device_id = ? AND last_resort = 1", arguments: [d])
            } else {
                let have = try Self.counts(db, d).oneTime
                guard have + packages.count <= QPQLimits.maxStoredKeyPackages else {
                    throw QPQServiceError(.limitExceeded, "at most \(QPQLimits.maxStoredKeyPackages) one-time KeyPackages per device (\(have) stored)")
                }
            }
            for p in packages {
                try db.execute(sql: "INSERT INTO key_packages(device_id, package, last_resort) VALUES (?, ?, ?)",
                               arguments: [d, Self.blob(p), lastResort ? 1 : 0])
            }
            return try Self.counts(db, d)
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
                throw QPQServiceError(.groupExists, "a group with this id exists")
            }
            try db.execute(sql: "INSERT INTO chat_groups(id, epoch, token_hash, created_at) VALUES (?, 0, ?, ?)",
                           arguments: [g, Self.blob(tokenHash), Self.i(now)])
            try db.execute(sql: "INSERT INTO members(group_id, device_id) VALUES (?, ?)", arguments: [g, Self.i(creator)])
        }
    }

    /// Checks the epoch and the token of a group inside a transaction (constant-time hash comparison).
    private static func checkGroup(_ db: Database, _ g: Data, epoch: UInt64, tokenHash: [UInt8]) throws {
        guard let row = try Row.fetchOne(db, sql: "SELECT epoch, token_hash FROM chat_groups WHERE id = ?", arguments: [g]) else {
            throw QPQServiceError(.unknownGroup, "no such group")
        }
        let current = u(int(row, "epoch"))
        guard current == epoch else {
            throw QPQServiceError(.epochMoved, "the group is at epoch \(current), not \(epoch): process its commits and retry",
                                  detail: current)
        }
        guard QPQConstantTime.equals(bytes(row, "token_hash"), tokenHash) else {
            throw QPQServiceError(.badToken, "the group token does not match this epoch's")
        }
    }

    private static func memberIds(_ db: Database, _ g: Data) throws -> [Int64] {
        try Int64.fetchAll(db, sql: "SELECT device_id FROM members WHERE group_id = ? ORDER BY device_id", arguments: [g])
    }

    /// Refuses the whole delivery if one recipient's queue is full.
    private static func checkQueues(_ db: Database, _ devices: [Int64]) throws {
        for d in devices {
            let n = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM deliveries WHERE device_id = ?", arguments: [d]) ?? 0
            guard n < QPQLimits.maxQueue else {
                throw QPQServiceError(.limitExceeded, "the queue of device \(d) is full (\(QPQLimits.maxQueue) envelopes)")
            }
        }
    }

    private static func enqueue(_ db: Database, _ g: Data, epoch: UInt64, kind: QPQEnvelopeKind, payload: [UInt8], now: UInt64,
                                to devices: [Int64]) throws -> UInt64 {
        // Only application messages disappear: commits and welcomes carry group state.
        var expiresAt: Int64 = 0
        if kind == .application,
           let ttl = try Int64.fetchOne(db, sql: "SELECT ttl_seconds FROM chat_groups WHERE id = ?", arguments: [g]), ttl > 0 {
            expiresAt = i(now) + ttl * 1000
        }
        try db.execute(sql: "INSERT INTO messages(group_id, epoch, kind, server_time, payload, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [g, i(epoch), Int64(kind.rawValue), i(now), blob(payload), expiresAt])
        let id = db.lastInsertedRowID
        for d in devices {
            try db.execute(sql: "INSERT INTO deliveries(device_id, message_id) VALUES (?, ?)", arguments: [d, id])
        }
        return u(id)
    }

    package func commit(_ c: QPQCommitRequest, now: UInt64) throws(QPQServiceError) -> QPQDelivery {
        try write { db in
            let g = Self.blob(c.groupId)
            try Self.checkGroup(db, g, epoch: c.epoch, tokenHash: c.tokenHash)
            let before = try Self.memberIds(db, g)
            var after = Set(before)
            for d in c.remove { after.remove(Self.i(d)) }
            for d in c.add {
                guard let row = try Row.fetchOne(db, sql: "SELECT revoked FROM devices WHERE id = ?", arguments: [Self.i(d)]),
                      Self.int(row, "revoked") == 0 else {
                    throw QPQServiceError(.unknownDevice, "device \(d) to add does not exist or was revoked")
                }
                after.insert(Self.i(d))
            }
            guard after.count <= QPQLimits.maxMembers else {
                throw QPQServiceError(.limitExceeded, "a group has at most \(QPQLimits.maxMembers) member devices")
            }
            for w in c.welcomes where !c.add.contains(w.deviceId) {
                throw QPQServiceError(.malformed, "a welcome for device \(w.deviceId), which the commit does not add")
            }
            try Self.checkQueues(db, before + c.welcomes.map { Self.i($0.deviceId) })
            // The epoch moves only if nobody moved it since the check (several writers, several nodes).
            try db.execute(sql: "UPDATE chat_groups SET epoch = epoch + 1, token_hash = ? WHERE id = ? AND epoch = ?",
                           arguments: [Self.blob(c.nextTokenHash), g, Self.i(c.epoch)])
            guard db.changesCount == 1 else {
                throw QPQServiceError(.epochMoved, "another commit won epoch \(c.epoch)", detail: c.epoch + 1)
            }
            let messageId = try Self.enqueue(db, g, epoch: c.epoch, kind: .commit, payload: c.commit, now: now, to: before)
            for w in c.welcomes {
                _ = try Self.enqueue(db, g, epoch: c.epoch + 1, kind: .welcome, payload: w.welcome, now: now, to: [Self.i(w.deviceId)])
            }
            for d in c.remove { try db.execute(sql: "DELETE FROM members WHERE group_id = ? AND device_id = ?", arguments: [g, Self.i(d)]) }
            for d in c.add {
                try db.execute(sql: "INSERT OR IGNORE INTO members(group_id, device_id) VALUES (?, ?)", arguments: [g, Self.i(d)])
            }
            let recipients = Set(before).union(c.welcomes.map { Self.i($0.deviceId) })
            return QPQDelivery(messageId: messageId, epoch: c.epoch + 1, recipients: recipients.sorted().map(Self.u))
        }
    }

    package func send(groupId: [UInt8], epoch: UInt64, tokenHash: [UInt8], message: [UInt8], now: UInt64) throws(QPQServiceError) -> QPQDelivery {
        try write { db in
            let g = Self.blob(groupId)
            try Self.checkGroup(db, g, epoch: epoch, tokenHash: tokenHash)
            let members = try Self.memberIds(db, g)
            try Self.checkQueues(db, members)
            let id = try Self.enqueue(db, g, epoch: epoch, kind: .application, payload: message, now: now, to: members)
            return QPQDelivery(messageId: id, epoch: epoch, recipients: members.map(Self.u))
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
            let ids = try Int64.fetchAll(db, sql: "SELECT id FROM messages WHERE expires_at > 0 AND expires_at <= ?", arguments: [Self.i(now)])
            for id in ids {
                try db.execute(sql: "DELETE FROM deliveries WHERE message_id = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM messages WHERE id = ?", arguments: [id])
            }
            let blobs = try Data.fetchAll(db, sql: "SELECT id FROM blobs WHERE expires_at <= ?", arguments: [Self.i(now)])
            for id in blobs {
                try db.execute(sql: "DELETE FROM blob_parts WHERE blob_id = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM blobs WHERE id = ?", arguments: [id])
            }
            return ids.count + blobs.count
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

    private static let noBlob = QPQServiceError(.unknownBlob, "no such blob (never created, expired, or not for this device)")

    private static func isMember(_ db: Database, group: Data, device: UInt64) throws -> Bool {
        try Row.fetchOne(db, sql: "SELECT 1 FROM members WHERE group_id = ? AND device_id = ?", arguments: [group, i(device)]) != nil
    }

    package func createBlob(id: [UInt8], groupId: [UInt8], userId: UInt64, deviceId: UInt64, size: UInt64, now: UInt64,
                            limits: QPQRateLimits) throws(QPQServiceError) -> QPQBlobInfo {
        try write { db in
            let g = Self.blob(groupId)
            guard size >= 1 else { throw QPQServiceError(.malformed, "size: a blob has at least 1 byte") }
            guard size <= limits.maxBlobSize else {
                throw QPQServiceError(.tooLarge, "this server takes blobs of at most \(limits.maxBlobSize) bytes, not \(size)",
                                      detail: limits.maxBlobSize)
            }
            guard try Self.isMember(db, group: g, device: deviceId) else {
                throw QPQServiceError(.unknownGroup, "no such group with this device as a member")
            }
            let live = Self.i(now)
            let used = Self.u(try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(size), 0) FROM blobs WHERE user_id = ? AND expires_at > ?",
                                                 arguments: [Self.i(userId), live]) ?? 0)
            guard used + size <= limits.blobQuota else {
                let left = limits.blobQuota > used ? limits.blobQuota - used : 0
                throw QPQServiceError(.limitExceeded, "blob quota: \(used) of \(limits.blobQuota) bytes in use, \(left) left", detail: left)
            }
            let hourAgo = now >= 3_600_000 ? now - 3_600_000 : 0
            let recent = try Int64.fetchAll(db, sql: """
                SELECT created_at FROM blobs WHERE user_id = ? AND created_at > ? ORDER BY created_at LIMIT ?
                """, arguments: [Self.i(userId), Self.i(hourAgo), limits.blobsPerHour])
            if recent.count >= limits.blobsPerHour, let oldest = recent.first {
                let wait = Self.u(oldest) + 3_600_000 - now
                throw QPQServiceError(.rateLimited, "at most \(limits.blobsPerHour) blobs per hour per account", detail: wait)
            }
            let expires = now + limits.blobLifetimeMilliseconds
            try db.execute(sql: "INSERT INTO blobs(id, group_id, user_id, size, received, created_at, expires_at) VALUES (?, ?, ?, ?, 0, ?, ?)",
                           arguments: [Self.blob(id), g, Self.i(userId), Self.i(size), live, Self.i(expires)])
            return QPQBlobInfo(size: size, received: 0, expiresAt: expires)
        }
    }

    package func appendBlob(id: [UInt8], userId: UInt64, offset: UInt64, data: [UInt8], now: UInt64) throws(QPQServiceError) -> QPQBlobInfo {
        try write { db in
            let b = Self.blob(id)
            guard let row = try Row.fetchOne(db, sql: "SELECT size, received, expires_at, user_id FROM blobs WHERE id = ? AND expires_at > ?",
                                             arguments: [b, Self.i(now)]),
                  Self.u(Self.int(row, "user_id")) == userId else { throw Self.noBlob }
            var info = Self.blobInfo(row)
            guard offset == info.received else {
                throw QPQServiceError(.wrongOffset, "the server holds \(info.received) bytes of this blob; upload from there", detail: info.received)
            }
            guard UInt64(data.count) <= info.size - info.received else {
                throw QPQServiceError(.tooLarge, "\(data.count) bytes at \(offset) pass the blob's size \(info.size)", detail: info.size)
            }
            try db.execute(sql: "INSERT INTO blob_parts(blob_id, offset, data) VALUES (?, ?, ?)", arguments: [b, Self.i(offset), Self.blob(data)])
            info.received += UInt64(data.count)
            try db.execute(sql: "UPDATE blobs SET received = ? WHERE id = ?", arguments: [Self.i(info.received), b])
            return info
        }
    }

    package func blobInfo(id: [UInt8], userId: UInt64, deviceId: UInt64, now: UInt64) throws(QPQServiceError) -> QPQBlobInfo {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT size, received, expires_at, user_id, group_id FROM blobs WHERE id = ? AND expires_at > ?
                """, arguments: [Self.blob(id), Self.i(now)]) else { throw Self.noBlob }
            let member = try Self.isMember(db, group: Data(Self.bytes(row, "group_id")), device: deviceId)
            guard Self.u(Self.int(row, "user_id")) == userId || member else { throw Self.noBlob }
            return Self.blobInfo(row)
        }
    }

    package func readBlob(id: [UInt8], deviceId: UInt64, offset: UInt64, length: Int, now: UInt64) throws(QPQServiceError) -> [UInt8] {
        try read { db in
            let b = Self.blob(id)
            guard let row = try Row.fetchOne(db, sql: "SELECT size, received, expires_at, group_id FROM blobs WHERE id = ? AND expires_at > ?",
                                             arguments: [b, Self.i(now)]),
                  try Self.isMember(db, group: Data(Self.bytes(row, "group_id")), device: deviceId) else { throw Self.noBlob }
            let info = Self.blobInfo(row)
            guard info.received == info.size else {
                throw QPQServiceError(.blobIncomplete, "the blob has \(info.received) of \(info.size) bytes", detail: info.received)
            }
            guard offset < info.size else { throw QPQServiceError(.malformed, "offset: \(offset) is not below the blob's size \(info.size)") }
            let end = min(info.size, offset + UInt64(length))
            let first = offset >= UInt64(QPQLimits.maxBlobPiece) ? offset - UInt64(QPQLimits.maxBlobPiece) : 0
            let parts = try Row.fetchAll(db, sql: """
                SELECT offset, data FROM blob_parts WHERE blob_id = ? AND offset >= ? AND offset < ? ORDER BY offset
                """, arguments: [b, Self.i(first), Self.i(end)])
            var out: [UInt8] = []
            out.reserveCapacity(Int(end - offset))
            for p in parts {
                let start = Self.u(Self.int(p, "offset"))
                let data = Self.bytes(p, "data")
                let pEnd = start + UInt64(data.count)
                guard pEnd > offset else { continue }
                let from = Int(max(start, offset) - start), to = Int(min(pEnd, end) - start)
                out += data[from..<to]
            }
            guard out.count == Int(end - offset) else { throw QPQServiceError(.internal, "storage: the blob's parts do not cover the range") }
            return out
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
        let rows = try Row.fetchCursor(db, sql: """
            SELECT m.id, m.group_id, m.epoch, m.kind, m.server_time, m.expires_at, m.payload FROM deliveries q
            JOIN messages m ON m.id = q.message_id WHERE q.device_id = ? AND q.message_id > ? ORDER BY q.message_id LIMIT ?
            """, arguments: [Self.i(deviceId), Self.i(min(after, UInt64(Int64.max))), limit + 1])
        var out: [QPQEnvelope] = []
        var bytes = 0
        while let row = try rows.next() {
            let e = QPQEnvelope(messageId: Self.u(Self.int(row, "id")), groupId: Self.bytes(row, "group_id"),
                                epoch: Self.u(Self.int(row, "epoch")),
                                kind: QPQEnvelopeKind(rawValue: UInt8(clamping: Self.int(row, "kind"))) ?? .application,
                                serverTime: Self.u(Self.int(row, "server_time")), expiresAt: Self.u(Self.int(row, "expires_at")),
                                payload: Self.bytes(row, "payload"))
            if out.count == limit || (!out.isEmpty && bytes + e.encodedSize > maxBytes) { return (out, true) }
            bytes += e.encodedSize
            out.append(e)
        }
        return (out, false)
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
