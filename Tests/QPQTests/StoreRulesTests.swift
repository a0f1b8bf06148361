import QPQProtocol
import QPQServer
import Testing

/// The store-independent rules both stores call (QPQRequestChecks, QPQGroupState, QPQBlobQuota,
/// QPQBlobInfo.appending, QPQBlobRange, QPQFetchPage), tested without a database.
@Suite("qpqd store rules: request checks, blob quota and ranges, fetch pages (no database)")
struct StoreRulesTests {
    /// The error a throwing rule ends with (nil if it did not throw; `internal` if not a service error).
    private func refusal<T>(_ body: () throws -> T) -> QPQServiceError? {
        do {
            _ = try body()
            return nil
        } catch let e as QPQServiceError {
            return e
        } catch {
            return QPQServiceError(.internal, "not a service error: \(error)")
        }
    }

    @Test("group: unknown, epoch moved (detail the current epoch), bad token, accepted")
    func group() throws {
        let state = QPQGroupState(epoch: 4, tokenHash: [1, 2, 3], ttlSeconds: 0)
        #expect(refusal { try QPQRequestChecks.group(nil, epoch: 4, tokenHash: [1, 2, 3]) }?.code == .unknownGroup)
        let moved = refusal { try QPQRequestChecks.group(state, epoch: 3, tokenHash: [1, 2, 3]) }
        #expect(moved?.code == .epochMoved && moved?.detail == 4)
        #expect(refusal { try QPQRequestChecks.group(state, epoch: 4, tokenHash: [1, 2, 4]) }?.code == .badToken)
        #expect(refusal { try QPQRequestChecks.group(state, epoch: 4, tokenHash: [1, 2]) }?.code == .badToken)
        #expect(try QPQRequestChecks.group(state, epoch: 4, tokenHash: [1, 2, 3]) == state)
    }

    @Test("queues: the first full queue in recipient order is named; absent counts are empty queues")
    func queues() throws {
        try QPQRequestChecks.queues([1, 2, 3], queued: [1: QPQLimits.maxQueue - 1])
        try QPQRequestChecks.queues([], queued: [9: QPQLimits.maxQueue])
        let full = refusal { try QPQRequestChecks.queues([5, 3, 2], queued: [2: QPQLimits.maxQueue, 3: QPQLimits.maxQueue + 1]) }
        #expect(full?.code == .limitExceeded && full?.message.contains("device 3 is full") == true, "\(String(describing: full))")
    }

    private func request(add: [UInt64] = [], remove: [UInt64] = [], welcomes: [UInt64] = []) -> QPQCommitRequest {
        QPQCommitRequest(groupId: [1], epoch: 0, tokenHash: [0], nextTokenHash: [1], add: add, remove: remove, commit: [7],
                         welcomes: welcomes.map { QPQWelcome(deviceId: $0, welcome: [8]) })
    }

    @Test("commit: adds must be live (the first dead one named), the member limit, welcomes only for adds; the plan's queues and recipients")
    func commit() throws {
        let dead = refusal { try QPQRequestChecks.commit(request(add: [7, 8, 9]), members: [1], liveAdds: [7, 9]) }
        #expect(dead?.code == .unknownDevice && dead?.message.contains("device 8 ") == true, "\(String(describing: dead))")
        let stray = refusal { try QPQRequestChecks.commit(request(add: [7], welcomes: [7, 6]), members: [1], liveAdds: [7]) }
        #expect(stray?.code == .malformed && stray?.message.contains("device 6") == true)
        let many = (1...UInt64(QPQLimits.maxMembers)).map { $0 }
        #expect(refusal { try QPQRequestChecks.commit(request(add: [5000]), members: many, liveAdds: [5000]) }?.code == .limitExceeded)
        // Removing one makes room for one.
        _ = try QPQRequestChecks.commit(request(add: [5000], remove: [1]), members: many, liveAdds: [5000])
        // Re-adding a member does not count twice.
        _ = try QPQRequestChecks.commit(request(add: [2]), members: many, liveAdds: [2])

        let plan = try QPQRequestChecks.commit(request(add: [9, 4], remove: [3], welcomes: [9, 4]), members: [3, 5], liveAdds: [4, 9])
        #expect(plan.queues == [3, 5, 9, 4], "members before the commit, then the welcomed devices")
        #expect(plan.recipients == [3, 4, 5, 9], "a removed member still gets the commit")
    }

    @Test("epoch guard, device limit, revocation")
    func smallChecks() throws {
        try QPQRequestChecks.epochUpdate(changed: 1, epoch: 5)
        let lost = refusal { try QPQRequestChecks.epochUpdate(changed: 0, epoch: 5) }
        #expect(lost?.code == .epochMoved && lost?.detail == 6)
        try QPQRequestChecks.deviceLimit(live: QPQLimits.maxDevices - 1)
        #expect(refusal { try QPQRequestChecks.deviceLimit(live: QPQLimits.maxDevices) }?.code == .limitExceeded)
        #expect(refusal { try QPQRequestChecks.revocation(nil, userId: 1, deviceId: 2) }?.code == .unknownDevice)
        #expect(refusal { try QPQRequestChecks.revocation((userId: 9, revoked: false), userId: 1, deviceId: 2) }?.code == .unknownDevice)
        #expect(refusal { try QPQRequestChecks.revocation((userId: 1, revoked: true), userId: 1, deviceId: 2) }?.code == .deviceRevoked)
        try QPQRequestChecks.revocation((userId: 1, revoked: false), userId: 1, deviceId: 2)
    }

    @Test("KeyPackage uploads: last resort is one package and replaces; one-time ones up to the limit; the counts after")
    func keyPackages() throws {
        #expect(refusal { try QPQRequestChecks.keyPackageUpload(count: 2, lastResort: true, stored: (3, false)) }?.code == .malformed)
        #expect(refusal { try QPQRequestChecks.keyPackageUpload(count: 0, lastResort: true, stored: (3, false)) }?.code == .malformed)
        #expect(try QPQRequestChecks.keyPackageUpload(count: 1, lastResort: true, stored: (3, false)) == (3, true))
        #expect(try QPQRequestChecks.keyPackageUpload(count: 1, lastResort: true, stored: (3, true)) == (3, true))
        #expect(try QPQRequestChecks.keyPackageUpload(count: 2, lastResort: false, stored: (3, true)) == (5, true))
        let max = QPQLimits.maxStoredKeyPackages
        #expect(try QPQRequestChecks.keyPackageUpload(count: max - 10, lastResort: false, stored: (10, false)) == (max, false))
        let over = refusal { try QPQRequestChecks.keyPackageUpload(count: max - 9, lastResort: false, stored: (10, false)) }
        #expect(over?.code == .limitExceeded && over?.message.contains("(10 stored)") == true)
    }

    @Test("disappearing timer: application messages only, milliseconds, clamped to what the databases hold")
    func expiry() {
        let g = QPQGroupState(epoch: 0, tokenHash: [], ttlSeconds: 2)
        #expect(g.expiresAt(kind: .application, now: 1000) == 3000)
        #expect(g.expiresAt(kind: .commit, now: 1000) == 0)
        #expect(g.expiresAt(kind: .welcome, now: 1000) == 0)
        #expect(QPQGroupState(epoch: 0, tokenHash: [], ttlSeconds: 0).expiresAt(kind: .application, now: 1000) == 0)
        #expect(QPQGroupState(epoch: 0, tokenHash: [], ttlSeconds: .max).expiresAt(kind: .application, now: 1) == UInt64(Int64.max))
        #expect(g.expiresAt(kind: .application, now: .max - 1) == UInt64(Int64.max))
    }

    @Test("blob quota: size bounds, quota (detail the bytes left), rate (detail the wait), the window, the expiry")
    func blobQuota() throws {
        var limits = QPQRateLimits()
        limits.maxBlobSize = 100
        limits.blobQuota = 150
        limits.blobsPerHour = 2
        #expect(refusal { try QPQBlobQuota.checkSize(0, limits: limits) }?.code == .malformed)
        let big = refusal { try QPQBlobQuota.checkSize(101, limits: limits) }
        #expect(big?.code == .tooLarge && big?.detail == 100)
        try QPQBlobQuota.checkSize(100, limits: limits)

        let now: UInt64 = 10_000_000
        #expect(QPQBlobQuota.windowStart(now: now) == now - 3_600_000)
        #expect(QPQBlobQuota.windowStart(now: 5) == 0)
        let info = try QPQBlobQuota.admit(size: 50, used: 100, recent: [now - 10], now: now, limits: limits)
        #expect(info == QPQBlobInfo(size: 50, received: 0, expiresAt: now + limits.blobLifetimeMilliseconds))
        let quota = refusal { try QPQBlobQuota.admit(size: 51, used: 100, recent: [], now: now, limits: limits) }
        #expect(quota?.code == .limitExceeded && quota?.detail == 50)
        let over = refusal { try QPQBlobQuota.admit(size: 1, used: 200, recent: [], now: now, limits: limits) }
        #expect(over?.code == .limitExceeded && over?.detail == 0)
        let rate = refusal { try QPQBlobQuota.admit(size: 1, used: 0, recent: [now - 1000, now - 10], now: now, limits: limits) }
        #expect(rate?.code == .rateLimited && rate?.detail == 3_600_000 - 1000)
    }

    @Test("blob appends: at the bytes received, not past the size")
    func blobAppend() throws {
        let info = QPQBlobInfo(size: 100, received: 60, expiresAt: 9)
        let wrong = refusal { try info.appending(offset: 5, count: 1) }
        #expect(wrong?.code == .wrongOffset && wrong?.detail == 60)
        let past = refusal { try info.appending(offset: 60, count: 41) }
        #expect(past?.code == .tooLarge && past?.detail == 100)
        #expect(try info.appending(offset: 60, count: 40) == QPQBlobInfo(size: 100, received: 100, expiresAt: 9))
    }

    @Test("blob ranges: complete blobs only, offset inside, length cut at the end; splicing parts, gaps are storage faults")
    func blobRange() throws {
        let complete = QPQBlobInfo(size: 100, received: 100, expiresAt: 9)
        let partial = refusal { try QPQBlobRange(QPQBlobInfo(size: 100, received: 60, expiresAt: 9), offset: 0, length: 1) }
        #expect(partial?.code == .blobIncomplete && partial?.detail == 60)
        #expect(refusal { try QPQBlobRange(complete, offset: 100, length: 1) }?.code == .malformed)
        #expect(try QPQBlobRange(complete, offset: 95, length: 100).end == 100)
        #expect(try QPQBlobRange(complete, offset: 95, length: Int.max).end == 100)
        #expect(try QPQBlobRange(complete, offset: 95, length: -1).end == 95)
        #expect(try QPQBlobRange(complete, offset: 5, length: 10).firstPart == 0)
        let far = try QPQBlobRange(QPQBlobInfo(size: 1 << 24, received: 1 << 24, expiresAt: 9), offset: 3 << 20, length: 10)
        #expect(far.firstPart == (3 << 20) - UInt64(QPQLimits.maxBlobPiece))

        let parts: [(offset: UInt64, data: [UInt8])] = [(0, Array(0..<60)), (60, Array(60..<100))]
        #expect(try QPQBlobRange(complete, offset: 55, length: 10).splice(parts) == Array(55..<65))
        #expect(try QPQBlobRange(complete, offset: 95, length: 100).splice(parts) == Array(95..<100))
        #expect(try QPQBlobRange(complete, offset: 60, length: 5).splice(parts) == Array(60..<65))
        #expect(try QPQBlobRange(complete, offset: 0, length: 100).splice(parts) == Array(0..<100))
        let gap = refusal { try QPQBlobRange(complete, offset: 50, length: 20).splice([(0, Array(0..<55)), (60, Array(60..<100))]) }
        #expect(gap?.code == .internal)
        #expect(refusal { try QPQBlobRange(complete, offset: 50, length: 20).splice([(0, Array(0..<60))]) }?.code == .internal)
        #expect(refusal { try QPQBlobRange(complete, offset: 50, length: 20).splice([]) }?.code == .internal)
    }

    private func envelope(_ id: UInt64, payload: Int) -> QPQEnvelope {
        QPQEnvelope(messageId: id, groupId: [1], epoch: 0, kind: .application, serverTime: 0, payload: [UInt8](repeating: 0, count: payload))
    }

    @Test("fetch pages: at most limit envelopes, about maxBytes but at least one, more when something is left; the cursor")
    func fetchPage() {
        /// Offers envelopes in order; which ones the page took.
        func offer(_ page: inout QPQFetchPage, _ envelopes: [QPQEnvelope]) -> [Bool] { envelopes.map { page.add($0) } }

        var page = QPQFetchPage(limit: 2, maxBytes: 1 << 20)
        #expect(page.rowLimit == 3)
        #expect(offer(&page, [envelope(1, payload: 1), envelope(2, payload: 1), envelope(3, payload: 1)]) == [true, true, false])
        #expect(page.result.envelopes.map(\.messageId) == [1, 2] && page.result.more)

        let size = envelope(1, payload: 10).encodedSize
        var bytes = QPQFetchPage(limit: 100, maxBytes: 2 * size)
        #expect(offer(&bytes, [envelope(1, payload: 10), envelope(2, payload: 10), envelope(3, payload: 0)]) == [true, true, false])
        #expect(bytes.result.envelopes.count == 2 && bytes.more)

        var tight = QPQFetchPage(limit: 100, maxBytes: 1)
        #expect(offer(&tight, [envelope(1, payload: 1000), envelope(2, payload: 0)]) == [true, false], "one envelope however large")
        #expect(tight.more)

        var all = QPQFetchPage(limit: 5, maxBytes: 1 << 20)
        #expect(offer(&all, [envelope(1, payload: 1)]) == [true])
        #expect(all.result.envelopes.count == 1 && !all.result.more)
        #expect(QPQFetchPage(limit: Int.max, maxBytes: 1).rowLimit == Int.max)
        #expect(QPQFetchPage.cursor(after: .max) == Int64.max && QPQFetchPage.cursor(after: 7) == 7)
    }
}
