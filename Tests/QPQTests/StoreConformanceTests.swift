import Foundation
import GRDB
import NIOConcurrencyHelpers
import QPQProtocol
import QPQServer
import QPQServerPostgres
import Testing

/// The stores under test: the same cases run against each, so the PostgreSQL store is held to the
/// SQLite store's behaviour.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// A fresh database of one kind; ``open()`` gives another store on the same database (a second
/// node, or a restarted one). PostgreSQL: a new database on the suite's server
/// (``SharedPostgres``), or on a server of the fixture's own outside such a suite.
final class StoreFixture: @unchecked Sendable {
    let kind: StoreKind
    private let dir: TempDir?
    let server: PostgresServer?
    /// Whether ``cleanup()`` stops the server (it is the fixture's own, not the suite's).
    private let ownsServer: Bool
    private let database: String

    /// Nil if the kind is PostgreSQL and it is not installed (and not required): the case is skipped.
    /// `shared`: the suite's server, if any (blocking; off the Swift pool).
    static func make(_ kind: StoreKind, shared: PostgresServer?) throws -> StoreFixture? {
        switch kind {
        case .sqlite: return StoreFixture(kind: kind, dir: TempDir(), server: nil, ownsServer: false, database: "")
        case .postgres:
            if let shared {
                return StoreFixture(kind: kind, dir: nil, server: shared, ownsServer: false,
                                    database: try SharedPostgres.freshDatabase(on: shared))
            }
            guard PostgresServer.enabled else { return nil }
            let server = try PostgresServer()
            do {
                return StoreFixture(kind: kind, dir: nil, server: server, ownsServer: true, database: try SharedPostgres.freshDatabase(on: server))
            } catch {
                server.stop()
                throw error
            }
        }
    }

    private init(kind: StoreKind, dir: TempDir?, server: PostgresServer?, ownsServer: Bool, database: String) {
        self.kind = kind
        self.dir = dir
        self.server = server
        self.ownsServer = ownsServer
        self.database = database
    }

    func open() throws -> any QPQStore {
        if let server { return try PostgresStore(location: server.location(database: database)) }
        return try GRDBStore(path: (dir?.path ?? NSTemporaryDirectory()) + "/qpqd.sqlite")
    }

    /// Queues `count` filler messages (of a group `EE`) for `device` directly in the database, faster than `count` sends.
    func fillQueue(of device: UInt64, count: Int) throws {
        let fill = { (blob: (String) -> String) in """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(count))
            INSERT INTO messages(group_id, epoch, kind, server_time, payload, expires_at) SELECT \(blob("ee")), 0, 1, 0, \(blob("00")), 0 FROM n
            """ }
        let queue = "INSERT INTO deliveries(device_id, message_id) SELECT \(device), id FROM messages WHERE group_id = "
        if let server {
            try server.execute(fill { "'\\x\($0)'::bytea" }, database: database)
            try server.execute(queue + "'\\xee'::bytea", database: database)
        } else {
            let db = try DatabaseQueue(path: (dir?.path ?? NSTemporaryDirectory()) + "/qpqd.sqlite")
            try db.write { db in
                try db.execute(sql: fill { "X'\($0)'" })
                try db.execute(sql: queue + "X'ee'")
            }
        }
    }

    /// The rows of `table` (a name from the schema), read directly in the database.
    func rows(in table: String) throws -> Int64 {
        let sql = "SELECT COUNT(*) FROM \(table)"
        if let server { return try server.integer(sql, database: database) ?? -1 }
        let db = try DatabaseQueue(path: (dir?.path ?? NSTemporaryDirectory()) + "/qpqd.sqlite")
        return try db.read { db in try Int64.fetchOne(db, sql: sql) ?? -1 }
    }

    func cleanup() {
        if ownsServer { server?.stop() }
        dir?.cleanup()
    }
}

/// Runs `body` on a thread of its own with a fresh store of `kind` (the stores block), on a fresh
/// database of the suite's PostgreSQL server if there is one (``SharedPostgres``).
func withStore(_ kind: StoreKind, _ body: @escaping @Sendable (StoreFixture, any QPQStore) throws -> Void) async throws {
    let shared = SharedPostgres.server
    try await offPool {
        guard let fixture = try StoreFixture.make(kind, shared: shared) else { return }
        defer { fixture.cleanup() }
        try body(fixture, try fixture.open())
    }
}

/// The error code a throwing store call ends with (nil if it did not throw; `.internal` for a non-service error).
/// Users "a" and "b" with one device each (identity keys [1] and [2]), made at time 1:
/// (user a, user b, device of a, device of b).
func twoUsers(_ store: any QPQStore) throws -> (UInt64, UInt64, UInt64, UInt64) {
    let u = try store.createUser(name: "a", record: [0], now: 1), v = try store.createUser(name: "b", record: [0], now: 1)
    let a = try store.addDevice(userId: u, name: "a", identityKey: [1], now: 1)
    let b = try store.addDevice(userId: v, name: "b", identityKey: [2], now: 1)
    return (u, v, a, b)
}

func code<T>(_ body: () throws -> T) -> QPQErrorCode? {
    do {
        _ = try body()
        return nil
    } catch let e as QPQServiceError {
        return e.code
    } catch {
        return .internal
    }
}

@Suite("QPQStore: the same cases on SQLite (GRDB) and PostgreSQL (a real server)", .serialized, .sharedPostgres)
struct StoreConformanceTests {
    @Test("accounts, devices and sessions: unique names, the device limit, revocation deletes sessions, queue and memberships",
          arguments: StoreKind.allCases)
    func accounts(kind: StoreKind) async throws {
        try await withStore(kind) { _, store in
            let alice = try store.createUser(name: "alice", record: [1, 2, 3], now: 10)
            #expect(code { try store.createUser(name: "alice", record: [9], now: 11) } == .userExists)
            #expect(try store.user(named: "alice") == QPQStoredUser(id: alice, name: "alice", record: [1, 2, 3]))
            #expect(try store.user(named: "nobody") == nil)
            #expect(try store.userName(id: alice) == "alice")
            #expect(try store.userName(id: 999) == nil)
            var devices: [UInt64] = []
            for n in 0..<QPQLimits.maxDevices {
                devices.append(try store.addDevice(userId: alice, name: "d\(n)", identityKey: [UInt8(n)], now: 20))
            }
            #expect(code { try store.addDevice(userId: alice, name: "one too many", identityKey: [0], now: 21) } == .limitExceeded)
            #expect(try store.device(id: devices[0]) == QPQStoredDevice(id: devices[0], userId: alice, name: "d0", identityKey: [0], createdAt: 20,
                                                                         revoked: false))
            #expect(try store.liveDevices(userId: alice).map(\.id) == devices)

            let token = [UInt8](repeating: 7, count: 32)
            try store.createSession(tokenHash: token, deviceId: devices[1], now: 30)
            #expect(try store.sessionDevice(tokenHash: token) == devices[1])
            #expect(try store.sessionDevice(tokenHash: [UInt8](repeating: 8, count: 32)) == nil)
            try store.createGroup(groupId: [0xAA], tokenHash: [1], creator: devices[1], now: 40)
            _ = try store.send(groupId: [0xAA], epoch: 0, tokenHash: [1], message: [5], now: 41)
            #expect(try store.fetch(deviceId: devices[1], after: 0, limit: 10, maxBytes: 1 << 20).envelopes.count == 1)

            let bob = try store.createUser(name: "bob", record: [4], now: 50)
            #expect(code { try store.revokeDevice(userId: bob, deviceId: devices[1]) } == .unknownDevice)
            try store.revokeDevice(userId: alice, deviceId: devices[1])
            #expect(code { try store.revokeDevice(userId: alice, deviceId: devices[1]) } == .deviceRevoked)
            #expect(try store.device(id: devices[1])?.revoked == true)
            #expect(try store.sessionDevice(tokenHash: token) == nil)
            #expect(try store.fetch(deviceId: devices[1], after: 0, limit: 10, maxBytes: 1 << 20).envelopes.isEmpty)
            #expect(try store.members(groupId: [0xAA])?.members.isEmpty == true)
            #expect(try store.liveDevices(userId: alice).count == QPQLimits.maxDevices - 1)
            // A revoked device frees its place.
            _ = try store.addDevice(userId: alice, name: "new", identityKey: [1], now: 60)
            try store.deleteSession(tokenHash: token)
        }
    }

    @Test("KeyPackages: one-time ones oldest first and deleted, the last-resort one kept and replaced, the per-device limit",
          arguments: StoreKind.allCases)
    func keyPackages(kind: StoreKind) async throws {
        try await withStore(kind) { _, store in
            let u = try store.createUser(name: "u", record: [0], now: 1)
            let d1 = try store.addDevice(userId: u, name: "a", identityKey: [1], now: 1)
            let d2 = try store.addDevice(userId: u, name: "b", identityKey: [2], now: 1)
            #expect(try store.addKeyPackages(deviceId: d1, packages: [[1], [2]], lastResort: false) == (2, false))
            #expect(try store.addKeyPackages(deviceId: d1, packages: [[9]], lastResort: true) == (2, true))
            #expect(code { try store.addKeyPackages(deviceId: d1, packages: [[8], [7]], lastResort: true) } == .malformed)
            #expect(try store.addKeyPackages(deviceId: d1, packages: [[10]], lastResort: true) == (2, true), "replaced, not added")
            #expect(code { try store.addKeyPackages(deviceId: d2, packages: Array(repeating: [0], count: QPQLimits.maxStoredKeyPackages + 1),
                                                    lastResort: false) } == .limitExceeded)
            #expect(try store.keyPackageCount(deviceId: d2) == (0, false))
            #expect(try store.takeKeyPackages(userId: u) == [QPQDeviceKeyPackage(deviceId: d1, keyPackage: [1])])
            #expect(try store.takeKeyPackages(userId: u) == [QPQDeviceKeyPackage(deviceId: d1, keyPackage: [2])])
            #expect(try store.takeKeyPackages(userId: u) == [QPQDeviceKeyPackage(deviceId: d1, keyPackage: [10])])
            #expect(try store.takeKeyPackages(userId: u) == [QPQDeviceKeyPackage(deviceId: d1, keyPackage: [10])], "last resort is kept")
            #expect(try store.keyPackageCount(deviceId: d1) == (0, true))
        }
    }

    @Test("groups and queues: commit moves the epoch once, welcomes, send, fetch pages, ack collects, epoch moved, bad token",
          arguments: StoreKind.allCases)
    func delivery(kind: StoreKind) async throws {
        try await withStore(kind) { _, store in
            let (u, v, a, b) = try twoUsers(store)
            let g: [UInt8] = [1, 2, 3]
            try store.createGroup(groupId: g, tokenHash: [0], creator: a, now: 2)
            #expect(code { try store.createGroup(groupId: g, tokenHash: [0], creator: a, now: 2) } == .groupExists)
            #expect(code { try store.send(groupId: [9], epoch: 0, tokenHash: [0], message: [1], now: 3) } == .unknownGroup)
            #expect(code { try store.send(groupId: g, epoch: 0, tokenHash: [1], message: [1], now: 3) } == .badToken)
            #expect(code { try store.send(groupId: g, epoch: 1, tokenHash: [0], message: [1], now: 3) } == .epochMoved)
            let bad = QPQCommitRequest(groupId: g, epoch: 0, tokenHash: [0], nextTokenHash: [1], add: [], remove: [], commit: [7],
                                       welcomes: [QPQWelcome(deviceId: b, welcome: [8])])
            #expect(code { try store.commit(bad, now: 4) } == .malformed)
            #expect(code { try store.commit(QPQCommitRequest(groupId: g, epoch: 0, tokenHash: [0], nextTokenHash: [1], add: [999], remove: [],
                                                             commit: [7], welcomes: []), now: 4) } == .unknownDevice)
            let add = QPQCommitRequest(groupId: g, epoch: 0, tokenHash: [0], nextTokenHash: [1], add: [b], remove: [], commit: [7],
                                       welcomes: [QPQWelcome(deviceId: b, welcome: [8])])
            let c = try store.commit(add, now: 5)
            #expect(c.epoch == 1 && c.recipients == [a, b].sorted())
            var moved: QPQServiceError?
            do { _ = try store.commit(add, now: 6) } catch let e as QPQServiceError { moved = e }
            #expect(moved?.code == .epochMoved && moved?.detail == 1)
            #expect(try store.members(groupId: g)?.epoch == 1)
            #expect(try store.members(groupId: g)?.members == [QPQMember(deviceId: a, userId: u, user: "a"), QPQMember(deviceId: b, userId: v, user: "b")])
            #expect(try store.members(groupId: [9]) == nil)
            #expect(try store.groups(deviceId: b) == [QPQGroupSummary(groupId: g, epoch: 1, memberCount: 2)])

            var sent: [UInt64] = []
            for n in 0..<5 {
                let d = try store.send(groupId: g, epoch: 1, tokenHash: [1], message: [UInt8(n)], now: 10 + UInt64(n))
                #expect(d.recipients == [a, b].sorted() && d.epoch == 1)
                sent.append(d.messageId)
            }
            #expect(sent == sent.sorted() && sent[0] > c.messageId)
            // b: the welcome (epoch 1), then five messages; a: its commit, then five.
            let first = try store.fetch(deviceId: b, after: 0, limit: 2, maxBytes: 1 << 20)
            #expect(first.more && first.envelopes.map(\.kind) == [.welcome, .application])
            #expect(first.envelopes[0].payload == [8] && first.envelopes[0].epoch == 1)
            #expect(first.envelopes[1].payload == [0] && first.envelopes[1].serverTime == 10)
            let rest = try store.fetch(deviceId: b, after: first.envelopes[1].messageId, limit: 10, maxBytes: 1 << 20)
            #expect(!rest.more && rest.envelopes.map(\.payload) == [[1], [2], [3], [4]])
            let many = try store.fetchMany([(a, 0), (b, sent[3])], limit: 100, maxBytes: 1 << 20)
            #expect(many[0].envelopes.map(\.kind) == [QPQEnvelopeKind.commit] + Array(repeating: QPQEnvelopeKind.application, count: 5))
            #expect(many[1].envelopes.map(\.payload) == [[4]])
            // Small maxBytes: at least one envelope, then "more".
            let tight = try store.fetch(deviceId: a, after: 0, limit: 100, maxBytes: 1)
            #expect(tight.envelopes.count == 1 && tight.more)

            #expect(try store.ack(deviceId: b, messageIds: first.envelopes.map(\.messageId) + [first.envelopes[0].messageId]) == 2)
            #expect(try store.ack(deviceId: b, messageIds: first.envelopes.map(\.messageId)) == 0)
            #expect(try store.fetch(deviceId: b, after: 0, limit: 100, maxBytes: 1 << 20).envelopes.count == 4)
            #expect(try store.ack(deviceId: b, messageIds: sent) == 4)
            #expect(try store.ack(deviceId: a, messageIds: [c.messageId] + sent) == 6)
            #expect(try store.fetch(deviceId: a, after: 0, limit: 100, maxBytes: 1 << 20).envelopes.isEmpty)

            // Remove b: b gets the commit, then is no member.
            let remove = QPQCommitRequest(groupId: g, epoch: 1, tokenHash: [1], nextTokenHash: [2], add: [], remove: [b], commit: [9], welcomes: [])
            #expect(try store.commit(remove, now: 20).recipients == [a, b].sorted())
            #expect(try store.send(groupId: g, epoch: 2, tokenHash: [2], message: [1], now: 21).recipients == [a])
            #expect(try store.groups(deviceId: b).isEmpty)
            try store.setDisappearing(groupId: g, epoch: 2, tokenHash: [2], seconds: 60)
            #expect(code { try store.setDisappearing(groupId: g, epoch: 1, tokenHash: [2], seconds: 60) } == .epochMoved)
        }
    }

    @Test("disappearing messages expire with their queue entries (commits do not); blobs: quota, offsets, reading, expiry",
          arguments: StoreKind.allCases)
    func expiryAndBlobs(kind: StoreKind) async throws {
        try await withStore(kind) { fixture, store in
            let (u, v, a, b) = try twoUsers(store)
            let g: [UInt8] = [4, 4]
            try store.createGroup(groupId: g, tokenHash: [0], creator: a, now: 1)
            try store.setDisappearing(groupId: g, epoch: 0, tokenHash: [0], seconds: 2)
            let m = try store.send(groupId: g, epoch: 0, tokenHash: [0], message: [1], now: 1000)
            #expect(try store.fetch(deviceId: a, after: 0, limit: 10, maxBytes: 1 << 20).envelopes.first?.expiresAt == 3000)
            let c = try store.commit(QPQCommitRequest(groupId: g, epoch: 0, tokenHash: [0], nextTokenHash: [1], add: [b], remove: [], commit: [2],
                                                      welcomes: [QPQWelcome(deviceId: b, welcome: [3])]), now: 1001)
            #expect(try store.expire(now: 2999) == 0)
            let queued = try fixture.rows(in: "deliveries")
            #expect(try store.expire(now: 3000) == 1)
            #expect(try fixture.rows(in: "deliveries") == queued - 1, "the expired message's one queue entry (a's) went with it")
            #expect(try fixture.rows(in: "messages") == 2, "the commit and the welcome stay")
            #expect(try store.fetch(deviceId: a, after: 0, limit: 10, maxBytes: 1 << 20).envelopes.map(\.messageId) == [c.messageId])
            #expect(m.messageId < c.messageId)

            var limits = QPQRateLimits()
            limits.maxBlobSize = 100
            limits.blobQuota = 150
            let blob: [UInt8] = Array(repeating: 0xB1, count: 16)
            #expect(code { try store.createBlob(id: blob, groupId: g, userId: u, deviceId: a, size: 101, now: 5000, limits: limits) } == .tooLarge)
            #expect(code { try store.createBlob(id: blob, groupId: g, userId: u, deviceId: a, size: 0, now: 5000, limits: limits) } == .malformed)
            #expect(code { try store.createBlob(id: blob, groupId: [9], userId: u, deviceId: a, size: 10, now: 5000, limits: limits) } == .unknownGroup)
            let info = try store.createBlob(id: blob, groupId: g, userId: u, deviceId: a, size: 100, now: 5000, limits: limits)
            #expect(info.received == 0 && info.expiresAt == 5000 + limits.blobLifetimeMilliseconds)
            #expect(code { try store.createBlob(id: [1], groupId: g, userId: u, deviceId: a, size: 51, now: 5000, limits: limits) } == .limitExceeded)
            #expect(code { try store.appendBlob(id: blob, userId: u, offset: 5, data: [1], now: 5001) } == .wrongOffset)
            #expect(code { try store.appendBlob(id: blob, userId: v, offset: 0, data: [1], now: 5001) } == .unknownBlob)
            #expect(try store.appendBlob(id: blob, userId: u, offset: 0, data: Array(0..<60), now: 5001).received == 60)
            #expect(code { try store.readBlob(id: blob, deviceId: b, offset: 0, length: 10, now: 5002) } == .blobIncomplete)
            #expect(code { try store.appendBlob(id: blob, userId: u, offset: 60, data: Array(repeating: 0, count: 41), now: 5001) } == .tooLarge)
            #expect(try store.appendBlob(id: blob, userId: u, offset: 60, data: Array(60..<100), now: 5001).received == 100)
            #expect(try store.blobInfo(id: blob, userId: v, deviceId: b, now: 5003).received == 100)
            #expect(try store.readBlob(id: blob, deviceId: b, offset: 55, length: 10, now: 5003) == Array(55..<65))
            #expect(try store.readBlob(id: blob, deviceId: b, offset: 95, length: 100, now: 5003) == Array(95..<100))
            #expect(code { try store.readBlob(id: blob, deviceId: b, offset: 100, length: 1, now: 5003) } == .malformed)
            #expect(try fixture.rows(in: "blob_parts") == 2)
            #expect(try store.expire(now: info.expiresAt) == 1)
            #expect(try fixture.rows(in: "blob_parts") == 0 && fixture.rows(in: "blobs") == 0, "the blob's parts went with it")
            #expect(code { try store.blobInfo(id: blob, userId: u, deviceId: a, now: info.expiresAt) } == .unknownBlob)
        }
    }

    @Test("a full queue (10,000 envelopes) refuses the whole send or commit, naming the device; an ack makes room",
          arguments: StoreKind.allCases)
    func fullQueue(kind: StoreKind) async throws {
        try await withStore(kind) { fixture, store in
            let (_, _, a, b) = try twoUsers(store)
            let g: [UInt8] = [5]
            try store.createGroup(groupId: g, tokenHash: [0], creator: a, now: 1)
            _ = try store.commit(QPQCommitRequest(groupId: g, epoch: 0, tokenHash: [0], nextTokenHash: [1], add: [b], remove: [], commit: [1],
                                                  welcomes: [QPQWelcome(deviceId: b, welcome: [2])]), now: 2)
            try fixture.fillQueue(of: b, count: QPQLimits.maxQueue - 2)  // with the welcome: one place left
            let last = try store.send(groupId: g, epoch: 1, tokenHash: [1], message: [3], now: 3)
            var refused: QPQServiceError?
            do { _ = try store.send(groupId: g, epoch: 1, tokenHash: [1], message: [4], now: 4) } catch let e as QPQServiceError { refused = e }
            #expect(refused?.code == .limitExceeded && refused?.message.contains("device \(b) is full") == true, "\(String(describing: refused))")
            #expect(code { try store.commit(QPQCommitRequest(groupId: g, epoch: 1, tokenHash: [1], nextTokenHash: [2], add: [], remove: [],
                                                             commit: [5], welcomes: []), now: 5) } == .limitExceeded)
            #expect(try store.members(groupId: g)?.epoch == 1, "the refused commit moved nothing")
            // a's queue took nothing from the refused send either.
            #expect(try store.fetch(deviceId: a, after: last.messageId, limit: 10, maxBytes: 1 << 20).envelopes.isEmpty)
            #expect(try store.ack(deviceId: b, messageIds: [last.messageId]) == 1)
            _ = try store.send(groupId: g, epoch: 1, tokenHash: [1], message: [6], now: 6)
        }
    }

    @Test("two stores on one database (two nodes): 8 concurrent commits to one epoch, exactly one accepted, the others get epoch moved; then a reopened store sees everything acknowledged as gone and the rest queued",
          arguments: StoreKind.allCases)
    func concurrentCommits(kind: StoreKind) async throws {
        try await withStore(kind) { fixture, first in
            let second = try fixture.open()
            let u = try first.createUser(name: "a", record: [0], now: 1)
            let a = try first.addDevice(userId: u, name: "a", identityKey: [1], now: 1)
            let g: [UInt8] = [7]
            try first.createGroup(groupId: g, tokenHash: [0], creator: a, now: 1)
            for round in 0..<5 {
                let epoch = UInt64(round)
                let outcomes = NIOLockedValueBox<[QPQErrorCode?]>([])
                let start = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
                for n in 0..<8 {
                    Thread {
                        start.wait()
                        let store = n % 2 == 0 ? first : second
                        let result = code { try store.commit(QPQCommitRequest(groupId: g, epoch: epoch, tokenHash: [UInt8(round)],
                                                                              nextTokenHash: [UInt8(round + 1)], add: [], remove: [],
                                                                              commit: [UInt8(n)], welcomes: []), now: 10) }
                        outcomes.withLockedValue { $0.append(result) }
                        finished.signal()
                    }.start()
                }
                for _ in 0..<8 { start.signal() }
                // All eight report within 60 s (this is a dedicated thread, not the Swift pool).
                for _ in 0..<8 { _ = finished.wait(timeout: .now() + 60) }
                let all = outcomes.withLockedValue { $0 }
                #expect(all.count == 8)
                #expect(all.filter { $0 == nil }.count == 1, "round \(round): \(all)")
                #expect(all.filter { $0 == .epochMoved }.count == 7, "round \(round): \(all)")
            }
            #expect(try second.members(groupId: g)?.epoch == 5)
            let queued = try first.fetch(deviceId: a, after: 0, limit: 100, maxBytes: 1 << 20).envelopes
            #expect(queued.count == 5 && queued.map(\.epoch) == [0, 1, 2, 3, 4])
            #expect(try second.ack(deviceId: a, messageIds: queued.prefix(3).map(\.messageId)) == 3)
            // A restarted node: a new store on the same database.
            let reopened = try fixture.open()
            #expect(try reopened.fetch(deviceId: a, after: 0, limit: 100, maxBytes: 1 << 20).envelopes == Array(queued.suffix(2)))
        }
    }
}
