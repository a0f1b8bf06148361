import Foundation
import NIOConcurrencyHelpers
import QPQClient
import QPQProtocol
import QPQServer
import Testing

/// The blob requests of qpq/1 (docs/messaging.md §6.4) against the server core, in process.
@Suite("qpqd core: blobs (in process, SQLite)", .serialized)
struct BlobTests {
    @Test("create, upload at the received offset only, status, download of complete blobs by members only; size, quota, rate and expiry")
    func blobLifecycle() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let now = NIOLockedValueBox<UInt64>(1_000_000_000)
        var context = try makeServerContext(dir: dir, clock: { now.withLockedValue { $0 } })
        context.limits.maxBlobSize = 1000
        context.limits.blobQuota = 2500
        context.limits.blobsPerHour = 4
        context.limits.blobLifetimeMilliseconds = 60_000
        let alice = try await registerAndLogin("alice", context: context)
        let bob = try await registerAndLogin("bob", context: context)
        let carol = try await registerAndLogin("carol", context: context)
        let a = alice.transport, b = bob.transport, c = carol.transport
        let g = Array("files".utf8)
        _ = try await a.expect(.createGroup(groupId: g, tokenHash: tokenHash(1)))
        _ = try await a.expect(.commit(groupId: g, epoch: 0, token: token(1), nextTokenHash: tokenHash(2), add: [bob.credentials.deviceId],
                                       remove: [], commit: [1], welcomes: []))

        // Only a member device may create one, within the size limit.
        func code(_ r: QPQResponse) -> QPQErrorCode? { if case .error(let c, _, _) = r { return c }; return nil }
        #expect(code(try await c.call(.blobCreate(groupId: g, size: 10))) == .unknownGroup)
        let anonymous = InProcessTransport(context: context)
        #expect(code(try await anonymous.call(.blobCreate(groupId: g, size: 10))) == .notAuthenticated)
        guard case .error(.tooLarge, let limit, let why) = try await a.call(.blobCreate(groupId: g, size: 1001)) else {
            Issue.record("over the size limit accepted"); return
        }
        #expect(limit == 1000 && why.contains("at most 1000 bytes"))
        guard case .blobCreated(let id, let expiresAt) = try await a.expect(.blobCreate(groupId: g, size: 300)) else { Issue.record("create"); return }
        #expect(id.count == 16 && expiresAt == 1_000_000_000 + 60_000)

        // Uploads must continue exactly where the server is; nobody else may upload.
        #expect(try await a.expect(.blobUpload(blobId: id, offset: 0, data: [UInt8](repeating: 1, count: 100))) == .blobState(size: 300, received: 100, expiresAt: expiresAt))
        guard case .error(.wrongOffset, let held, _) = try await a.call(.blobUpload(blobId: id, offset: 0, data: [2])) else {
            Issue.record("a repeated offset accepted"); return
        }
        #expect(held == 100)
        #expect(code(try await b.call(.blobUpload(blobId: id, offset: 100, data: [2]))) == .unknownBlob)
        #expect(code(try await a.call(.blobUpload(blobId: id, offset: 100, data: [UInt8](repeating: 2, count: 201)))) == .tooLarge)
        // Not complete yet: no download.
        guard case .error(.blobIncomplete, let got, _) = try await b.call(.blobDownload(blobId: id, offset: 0, length: 10)) else {
            Issue.record("incomplete download"); return
        }
        #expect(got == 100)
        #expect(try await b.expect(.blobStatus(blobId: id)) == .blobState(size: 300, received: 100, expiresAt: expiresAt))
        _ = try await a.expect(.blobUpload(blobId: id, offset: 100, data: [UInt8](repeating: 2, count: 150)))
        _ = try await a.expect(.blobUpload(blobId: id, offset: 250, data: [UInt8](repeating: 3, count: 50)))
        // Ranges across the stored pieces, cut at the end; past the end is malformed; non-members see nothing.
        #expect(try await b.expect(.blobDownload(blobId: id, offset: 90, length: 20)) == .blobData(data: [UInt8](repeating: 1, count: 10) + [UInt8](repeating: 2, count: 10)))
        #expect(try await b.expect(.blobDownload(blobId: id, offset: 240, length: 1000)) == .blobData(data: [UInt8](repeating: 2, count: 10) + [UInt8](repeating: 3, count: 50)))
        #expect(code(try await b.call(.blobDownload(blobId: id, offset: 300, length: 1))) == .malformed)
        #expect(code(try await c.call(.blobDownload(blobId: id, offset: 0, length: 1))) == .unknownBlob)
        #expect(code(try await c.call(.blobStatus(blobId: id))) == .unknownBlob)
        #expect(code(try await b.call(.blobStatus(blobId: [UInt8](repeating: 0, count: 16)))) == .unknownBlob)

        // Quota: 2500 bytes of live blobs per account.
        _ = try await a.expect(.blobCreate(groupId: g, size: 1000))
        _ = try await a.expect(.blobCreate(groupId: g, size: 1000))
        guard case .error(.limitExceeded, let left, _) = try await a.call(.blobCreate(groupId: g, size: 201)) else {
            Issue.record("over quota accepted"); return
        }
        #expect(left == 200)
        // Rate: the fourth blob in the hour is fine, the fifth waits until the first is an hour old.
        _ = try await a.expect(.blobCreate(groupId: g, size: 100))
        guard case .error(.rateLimited, let wait, _) = try await a.call(.blobCreate(groupId: g, size: 1)) else {
            Issue.record("over the rate accepted"); return
        }
        #expect(wait == 3_600_000)

        // Expiry: after the lifetime the sweeper deletes blobs and their bytes; the quota is free again.
        now.withLockedValue { $0 += 60_000 }
        #expect(try context.store.expire(now: now.withLockedValue { $0 }) == 4)
        #expect(code(try await b.call(.blobDownload(blobId: id, offset: 0, length: 10))) == .unknownBlob)
        let file = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/qpqd.sqlite"))
        #expect(file.range(of: Data([UInt8](repeating: 3, count: 50))) == nil, "the blob's bytes are gone from the database file")
        now.withLockedValue { $0 += 3_600_000 }
        guard case .blobCreated = try await a.expect(.blobCreate(groupId: g, size: 1000)) else { Issue.record("after expiry"); return }
    }
}
