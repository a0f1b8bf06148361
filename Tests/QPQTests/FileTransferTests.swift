import Crypto
import Foundation
import GRDB
import QNSPCrypto
import QSSHTestSupport
import QPQProtocol
import Testing

/// `qpq send-file` and the file side of `qpq recv` as real processes against a real qpqd.
@Suite("qpq send-file / recv files (processes on 127.0.0.1)", .serialized)
struct FileTransferTests {
    static let maxBlob = 8 * 1024 * 1024

    /// A server, two logged-in users in one group, and helpers to run qpq as them.
    struct Setup {
        let dir: TempDir
        let server: QPQDProcess
        let common: [String]
        var downloads: String { dir.path + "/bob-downloads" }

        func env(_ who: String) -> [String: String] { ["QPQ_PASSWORD": "password of \(who)"] }
        func args(_ who: String, _ args: [String]) -> [String] { args + ["--store", dir.path + "/\(who).store"] + common }

        @discardableResult
        func qpq(_ who: String, _ a: [String], expect status: Int32? = 0, extra: [String: String] = [:]) async throws -> ToolRun.Result {
            let r = try await ToolRun.run("qpq", args(who, a), environment: env(who).merging(extra) { $1 }, seconds: 120)
            if let status { #expect(r.status == status, "qpq \(a) as \(who): \(r.stderr)") }
            #expect(!r.stderr.contains("Cannot schedule"), "qpq \(a) as \(who): \(r.stderr)")
            return r
        }

        /// The largest `received` of any blob in qpqd's database (read beside the running server).
        func serverReceived() throws -> Int64 {
            let db = try DatabaseQueue(path: dir.path + "/db.sqlite")
            return try db.read { try Int64.fetchOne($0, sql: "SELECT COALESCE(MAX(received), 0) FROM blobs") ?? 0 }
        }
    }

    static func setUp(maxBlob: Int = maxBlob) async throws -> Setup {
        let dir = TempDir()
        let host = try HostKeyPair.generate(comment: "file test")
        try KeyFileIO.writePrivateKey(try PrivateKeyFile.encode(.host(host)), path: dir.path + "/host_key")
        try KeyFileIO.writePublicKey(PublicKeyLine.host(host.publicKey, comment: "qpqd").text + "\n", path: dir.path + "/host_key.pub")
        let server = try QPQDProcess(arguments: ["-p", "0", "-h", dir.path + "/host_key", "--database", dir.path + "/db.sqlite",
                                                 "--opaque-setup", dir.path + "/opaque", "--max-blob-size", "\(maxBlob)"])
        let port = try await server.waitForPort()
        let s = Setup(dir: dir, server: server, common: ["--server", "127.0.0.1:\(port)", "--host-key", dir.path + "/host_key.pub"])
        for who in ["alice", "bob"] {
            try await s.qpq(who, ["register", who])
            try await s.qpq(who, ["login", who])
        }
        try await s.qpq("alice", ["group", "create", "friends"])
        try await s.qpq("alice", ["group", "add", "friends", "bob"])
        return s
    }

    static func randomFile(_ path: String, size: Int, seed: UInt64) throws -> [UInt8] {
        var rng = QPQRandom(seed: seed)
        var bytes = [UInt8]()
        bytes.reserveCapacity(size + 8)
        while bytes.count < size {
            let w = rng.next()
            for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: w >> (8 * UInt64(k)))) }
        }
        bytes.removeLast(bytes.count - size)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return Array(SHA256.hash(data: bytes))
    }

    /// Flips one byte of the second stored chunk in qpqd's SQLite database (a tampered blob);
    /// returns the database for further checks.
    static func flipByteOfSecondChunk(database path: String) async throws -> DatabaseQueue {
        let db = try DatabaseQueue(path: path)
        try await db.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT blob_id, offset, data FROM blob_parts ORDER BY offset LIMIT 1 OFFSET 1") else {
                Issue.record("no second chunk stored"); return
            }
            var data = [UInt8]((row["data"] as Data?) ?? Data())
            data[100] ^= 0x01
            try db.execute(sql: "UPDATE blob_parts SET data = ? WHERE blob_id = ? AND offset = ?",
                           arguments: [Data(data), row["blob_id"] as Data?, row["offset"] as Int64?])
        }
        return db
    }

    static func sha(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { Array(SHA256.hash(data: $0)) }
    }

    /// Runs qpq in the background until `condition` holds (checked every 50 ms, at most 60 s), then SIGKILLs it.
    static func killWhen(_ s: Setup, _ who: String, _ a: [String], extra: [String: String],
                         _ condition: @escaping @Sendable () -> Bool) async throws -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try ToolRun.path("qpq"))
        p.arguments = s.args(who, a)
        p.environment = ProcessInfo.processInfo.environment.merging(s.env(who).merging(extra) { $1 }) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let reached: Bool = await withCheckedContinuation { c in
            DispatchQueue.global().async {
                let deadline = Date().addingTimeInterval(60)
                while Date() < deadline, p.isRunning {
                    if condition() { c.resume(returning: true); return }
                    usleep(50_000)
                }
                c.resume(returning: condition())
            }
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        return reached
    }

    @Test("a 5 MiB file between two users, hash checked; a second copy is not written over the first; hostile names stay inside",
          .timeLimit(.minutes(6)))
    func sendAndReceive() async throws {
        let s = try await Self.setUp()
        defer { s.dir.cleanup() }
        let path = s.dir.path + "/data.bin"
        let hash = try Self.randomFile(path, size: 5 * 1024 * 1024 + 12345, seed: 7)
        let sent = try await s.qpq("alice", ["send-file", "friends", path])
        #expect(sent.stdout == "sent data.bin (\(5 * 1024 * 1024 + 12345) bytes) to friends\n", "no progress bar when stdout is not a terminal")
        let got = try await s.qpq("bob", ["recv", "--download-dir", s.downloads])
        #expect(got.stdout.contains("[friends] alice: [file] data.bin (\(5 * 1024 * 1024 + 12345) bytes)\n"))
        #expect(got.stdout.contains("saved \(s.downloads)/data.bin\n"), "\(got.stdout)")
        #expect(Self.sha(s.downloads + "/data.bin") == hash)

        // The same name again: saved beside it, the first one untouched.
        let other = s.dir.path + "/other/data.bin"
        try FileManager.default.createDirectory(atPath: s.dir.path + "/other", withIntermediateDirectories: true)
        let hash2 = try Self.randomFile(other, size: 70_000, seed: 8)
        try await s.qpq("alice", ["send-file", "friends", other])
        let again = try await s.qpq("bob", ["recv", "--download-dir", s.downloads])
        #expect(again.stdout.contains("saved \(s.downloads)/data (1).bin\n"), "\(again.stdout)")
        #expect(Self.sha(s.downloads + "/data.bin") == hash)
        #expect(Self.sha(s.downloads + "/data (1).bin") == hash2)

        // Hostile names: only the last component is used, never a path.
        let small = s.dir.path + "/small"
        let hash3 = try Self.randomFile(small, size: 1000, seed: 9)
        try await s.qpq("alice", ["send-file", "friends", small, "--name", "../x"])
        try await s.qpq("alice", ["send-file", "friends", small, "--name", s.dir.path + "/absolute-evil"])
        try await s.qpq("alice", ["send-file", "friends", small, "--name", ".."])
        let hostile = try await s.qpq("bob", ["recv", "--download-dir", s.downloads])
        #expect(hostile.stdout.contains("saved \(s.downloads)/x\n"), "\(hostile.stdout)")
        #expect(hostile.stdout.contains("saved \(s.downloads)/absolute-evil\n"), "\(hostile.stdout)")
        #expect(hostile.stdout.contains("saved \(s.downloads)/file\n"), "\(hostile.stdout)")
        #expect(!FileManager.default.fileExists(atPath: s.dir.path + "/x"))
        #expect(!FileManager.default.fileExists(atPath: s.dir.path + "/absolute-evil"))
        #expect(Self.sha(s.downloads + "/x") == hash3)
        // No partial files are left behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: s.downloads).filter { $0.hasPrefix(".qpq-") }
        #expect(left.isEmpty, "\(left)")
        #expect(try await s.server.terminate() == 0)
    }

    @Test("an upload killed mid-way resumes from the server's offset; a download killed mid-way resumes from the partial file",
          .timeLimit(.minutes(6)))
    func resume() async throws {
        let s = try await Self.setUp()
        defer { s.dir.cleanup() }
        let path = s.dir.path + "/big.bin"
        let size = 6 * 1024 * 1024 + 777
        let hash = try Self.randomFile(path, size: size, seed: 11)
        // The client stops making progress after 1 MiB (test hook); it is killed once the server holds that much.
        let mib = Int64(1024 * 1024)
        let reached = try await Self.killWhen(s, "alice", ["send-file", "friends", path], extra: ["QPQ_TEST_STALL_AFTER_BYTES": "\(mib)"]) {
            ((try? s.serverReceived()) ?? 0) >= mib
        }
        #expect(reached, "the server never held 1 MiB of the upload")
        let held = try s.serverReceived()
        #expect(held >= mib && held < Int64(size))
        let resumed = try await s.qpq("alice", ["send-file", "friends", path])
        #expect(resumed.stderr.contains("qpq: resumed the upload at byte "), "\(resumed.stderr)")
        #expect(resumed.stdout == "sent big.bin (\(size) bytes) to friends\n")
        // One blob only: the upload continued, it did not start again.
        let blobs = try await DatabaseQueue(path: s.dir.path + "/db.sqlite").read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM blobs") }
        #expect(blobs == 1)

        // Bob's download stalls after 2 MiB and is killed once the partial file has that much.
        let downloads = s.downloads
        let reachedDownload = try await Self.killWhen(s, "bob", ["recv", "--download-dir", downloads],
                                                      extra: ["QPQ_TEST_STALL_AFTER_BYTES": "\(2 * mib)"]) {
            let parts = (try? FileManager.default.contentsOfDirectory(atPath: downloads))?.filter { $0.hasPrefix(".qpq-") } ?? []
            guard let part = parts.first,
                  let n = (try? FileManager.default.attributesOfItem(atPath: downloads + "/" + part))?[.size] as? NSNumber else { return false }
            return n.int64Value >= 2 * mib
        }
        #expect(reachedDownload, "the partial download never reached 2 MiB")
        #expect(!FileManager.default.fileExists(atPath: downloads + "/big.bin"))
        let got = try await s.qpq("bob", ["recv", "--download-dir", downloads])
        #expect(got.stderr.contains("qpq: resumed the download at byte "), "\(got.stderr)")
        #expect(got.stdout.contains("saved \(downloads)/big.bin\n"), "\(got.stdout)")
        #expect(Self.sha(downloads + "/big.bin") == hash)
        #expect(try await s.server.terminate() == 0)
    }

    @Test("an interrupted upload of a file that then changes starts a new blob with a new key (never the old key over new bytes)",
          .timeLimit(.minutes(6)))
    func changedFileIsNotResumed() async throws {
        let s = try await Self.setUp()
        defer { s.dir.cleanup() }
        let path = s.dir.path + "/notes.bin"
        let size = 3 * 1024 * 1024
        _ = try Self.randomFile(path, size: size, seed: 21)
        let mib = Int64(1024 * 1024)
        let reached = try await Self.killWhen(s, "alice", ["send-file", "friends", path], extra: ["QPQ_TEST_STALL_AFTER_BYTES": "\(mib)"]) {
            ((try? s.serverReceived()) ?? 0) >= mib
        }
        #expect(reached)
        let changed = try Self.randomFile(path, size: size, seed: 22)  // same size, other bytes
        let sent = try await s.qpq("alice", ["send-file", "friends", path])
        #expect(!sent.stderr.contains("resumed"), "\(sent.stderr)")
        let blobs = try await DatabaseQueue(path: s.dir.path + "/db.sqlite").read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM blobs") }
        #expect(blobs == 2)
        let got = try await s.qpq("bob", ["recv", "--download-dir", s.downloads])
        #expect(got.stdout.contains("saved \(s.downloads)/notes.bin\n"), "\(got.stdout)")
        #expect(Self.sha(s.downloads + "/notes.bin") == changed)
        #expect(try await s.server.terminate() == 0)
    }

    @Test("a tampered chunk is refused (nothing saved); a file over the server's blob limit is refused with a clear error",
          .timeLimit(.minutes(6)))
    func tamperAndLimit() async throws {
        let s = try await Self.setUp()
        defer { s.dir.cleanup() }
        let path = s.dir.path + "/doc.pdf"
        _ = try Self.randomFile(path, size: 600_000, seed: 12)
        try await s.qpq("alice", ["send-file", "friends", path])
        let db = try await Self.flipByteOfSecondChunk(database: s.dir.path + "/db.sqlite")
        let got = try await s.qpq("bob", ["recv", "--download-dir", s.downloads], expect: 1)
        #expect(got.stderr.contains("chunk 1 of the file doc.pdf fails authentication (tampered or corrupt): refused"), "\(got.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.downloads + "/doc.pdf"))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: s.downloads)) ?? []).isEmpty)

        // Over the limit (8 MiB here): refused before any upload, with the limit in the message.
        let huge = s.dir.path + "/huge.bin"
        _ = try Self.randomFile(huge, size: Self.maxBlob + 1, seed: 13)
        let refused = try await s.qpq("alice", ["send-file", "friends", huge], expect: nil)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("is too large: the server takes files of at most \(Self.maxBlob) bytes"), "\(refused.stderr)")
        let blobs = try await db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM blobs") }
        #expect(blobs == 1)
        #expect(try await s.server.terminate() == 0)
    }

    @Test("a 50 MiB file sent from a terminal (tmux: the progress bar is drawn) and received with its hash checked", .timeLimit(.minutes(8)))
    func fiftyMiBWithProgressBar() async throws {
        let s = try await Self.setUp(maxBlob: 64 * 1024 * 1024)
        defer { s.dir.cleanup() }
        let size = 50 * 1024 * 1024
        let hash = try Self.randomFile(s.dir.path + "/big50.bin", size: size, seed: 50)
        let tmux = TmuxPane(socket: "qpq-file-\(getpid())", scratch: s.dir.path)
        defer { tmux.kill() }
        try tmux.start(width: 120, height: 20, command: "cd '\(s.dir.path)' && PS1='READY> ' QPQ_PASSWORD='password of alice' sh")
        try await tmux.waitFor("READY>")
        tmux.type("'\(try ToolRun.path("qpq"))' send-file friends big50.bin --store alice.store; echo SEND-EXIT=$((100+$?))", enter: true)
        // The typed command line holds "SEND-EXIT=$((", so only the printed status (100 + exit code) matches.
        try await tmux.waitFor("SEND-EXIT=1", seconds: 300)
        let pane = tmux.pane()
        #expect(pane.contains("big50.bin [##############################] 100% 50.0 MiB/50.0 MiB"), "\(pane)")
        #expect(pane.contains("sent big50.bin (\(size) bytes) to friends"), "\(pane)")
        #expect(pane.contains("SEND-EXIT=100"), "\(pane)")
        let got = try await s.qpq("bob", ["recv", "--download-dir", s.downloads, "--max-download", "64M"])
        #expect(got.stdout.contains("saved \(s.downloads)/big50.bin\n"), "\(got.stdout)")
        #expect(Self.sha(s.downloads + "/big50.bin") == hash)
        #expect(try await s.server.terminate() == 0)
    }

    @Test("recv --max-download: a file over the limit is listed with the command that fetches it, not downloaded; below it, saved",
          .timeLimit(.minutes(6)))
    func maxDownload() async throws {
        let s = try await Self.setUp()
        defer { s.dir.cleanup() }
        let bigSize = 3 * 1024 * 1024 + 5, smallSize = 200_000
        let bigHash = try Self.randomFile(s.dir.path + "/big.bin", size: bigSize, seed: 21)
        let smallHash = try Self.randomFile(s.dir.path + "/small.bin", size: smallSize, seed: 22)
        try await s.qpq("alice", ["send-file", "friends", s.dir.path + "/big.bin"])
        try await s.qpq("alice", ["send-file", "friends", s.dir.path + "/small.bin"])
        try await s.qpq("bob", ["recv", "--download-dir", s.downloads, "--max-download", "1x"], expect: 64)  // not a size: usage error

        let first = try await s.qpq("bob", ["recv", "--download-dir", s.downloads, "--max-download", "1M"])
        #expect(first.stdout.contains("saved \(s.downloads)/small.bin\n"), "\(first.stdout)")
        #expect(Self.sha(s.downloads + "/small.bin") == smallHash)
        #expect(!FileManager.default.fileExists(atPath: s.downloads + "/big.bin"))
        let prefix = "not downloaded: big.bin (\(bigSize) bytes) is over --max-download (1048576 bytes); fetch it with: qpq recv --accept-file "
        let line = try #require(first.stdout.split(separator: "\n").first { $0.hasPrefix(prefix) }, "\(first.stdout)")
        let id = try #require(UInt64(line.dropFirst(prefix.count)), "\(line)")
        // Nothing of it was fetched: no partial file either.
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.downloads).filter { $0.hasPrefix(".qpq-") }.isEmpty)

        // Still pending: the next run lists it again (the default limit, 32 MiB, would take it; the given one does not).
        let again = try await s.qpq("bob", ["recv", "--download-dir", s.downloads, "--max-download", "1M"])
        #expect(again.stdout == "\(line)\n", "\(again.stdout)")
        // The command it printed fetches it despite the limit.
        let accepted = try await s.qpq("bob", ["recv", "--download-dir", s.downloads, "--max-download", "1M", "--accept-file", "\(id)"])
        #expect(accepted.stdout.contains("saved \(s.downloads)/big.bin\n"), "\(accepted.stdout)")
        #expect(Self.sha(s.downloads + "/big.bin") == bigHash)
        #expect(try await s.qpq("bob", ["recv", "--download-dir", s.downloads]).stdout == "", "nothing pending any more")
        #expect(try await s.server.terminate() == 0)
    }
}
