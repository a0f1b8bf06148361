import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import PostgresNIO
import QNSPBench
import QPQServer
import QPQServerPostgres

/// A throwaway PostgreSQL server for one test: `initdb` into a temporary directory and `postgres`
/// on a free 127.0.0.1 port, run as the `postgres` system user when the tests run as root
/// (PostgreSQL refuses root). Readiness: the server's "ready to accept connections" line, then a
/// real connection, both within a deadline. ``stop()`` (in a `defer`) ends it and removes the directory.
/// Without PostgreSQL (Debian: postgresql) the tests skip, unless QPQ_REQUIRE_POSTGRES=1 (CI): then they fail.
final class PostgresServer: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible { let description: String }

    /// The server's directory: under /tmp when running as root, so that the postgres user can reach
    /// it whatever TMPDIR is (a TMPDIR under /root would not be).
    let dir: String
    private(set) var port = 0
    private let process = Process()
    private let log = NIOLockedValueBox("")
    private let exited = DispatchSemaphore(value: 0)

    /// The directory of `postgres` and `initdb` (the highest installed version), if any.
    static let binDir: String? = {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        for v in versions.reversed() where FileManager.default.isExecutableFile(atPath: "\(root)/\(v)/bin/postgres") {
            return "\(root)/\(v)/bin"
        }
        return nil
    }()

    static var required: Bool { ProcessInfo.processInfo.environment["QPQ_REQUIRE_POSTGRES"] == "1" }
    /// Whether the PostgreSQL tests run: PostgreSQL is installed, or it is required (and its absence fails).
    static var enabled: Bool { binDir != nil || required }

    /// The command prefix that runs a program as the `postgres` user when we are root.
    private static func asPostgres(_ program: String, _ arguments: [String]) throws -> (String, [String]) {
        guard getuid() == 0 else { return (program, arguments) }
        guard getpwnam("postgres") != nil else { throw Failure(description: "running as root, but there is no postgres user to run PostgreSQL as") }
        return ("/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", program] + arguments)
    }

    /// Runs a program to completion (blocking; call off the Swift pool), its output discarded unless it fails.
    private static func run(_ program: String, _ arguments: [String]) throws {
        let (exe, args) = try asPostgres(program, arguments)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        p.environment = ["PATH": "/usr/bin:/bin", "LC_ALL": "C"]
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw Failure(description: "\(program) failed (\(p.terminationStatus)): \(text)") }
    }

    /// Starts a server (blocking, at most `seconds` for readiness; call off the Swift pool).
    init(seconds: Double = 60) throws {
        guard let bin = Self.binDir else {
            throw Failure(description: "PostgreSQL is not installed (Debian: apt-get install postgresql); QPQ_REQUIRE_POSTGRES=1 makes this a failure")
        }
        dir = (getuid() == 0 ? "/tmp/" : NSTemporaryDirectory()) + "qpq-pg-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if getuid() == 0, let pw = getpwnam("postgres") {
            guard chown(dir, pw.pointee.pw_uid, pw.pointee.pw_gid) == 0 else {
                try? FileManager.default.removeItem(atPath: dir)
                throw Failure(description: "chown \(dir): \(errno)")
            }
        }
        do {
            // TCP logins need the password (SCRAM-SHA-256), as a real deployment would.
            let pwfile = dir + "/pwfile"
            guard FileManager.default.createFile(atPath: pwfile, contents: Data((Self.password + "\n").utf8)) else {
                throw Failure(description: "cannot write \(pwfile)")
            }
            if getuid() == 0, let pw = getpwnam("postgres") { _ = chown(pwfile, pw.pointee.pw_uid, pw.pointee.pw_gid) }
            try Self.run("\(bin)/initdb", ["-D", dir + "/data", "-U", "qpq", "--auth-local=trust", "--auth-host=scram-sha-256",
                                           "--pwfile=" + pwfile, "-E", "UTF8", "--locale=C", "--no-sync"])
            port = try ProcessRunner.freePort()
            let (exe, args) = try Self.asPostgres("\(bin)/postgres", ["-D", dir + "/data", "-k", dir, "-p", "\(port)",
                                                                     "-h", "127.0.0.1", "-c", "fsync=off", "-c", "max_connections=60"])
            process.executableURL = URL(fileURLWithPath: exe)
            process.arguments = args
            process.environment = ["PATH": "/usr/bin:/bin", "LC_ALL": "C"]
            let err = Pipe()
            process.standardError = err
            process.standardOutput = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            let ready = DispatchSemaphore(value: 0)
            process.terminationHandler = { [exited] _ in exited.signal(); ready.signal() }
            try process.run()
            let handle = err.fileHandleForReading
            Thread { [log] in
                var buffer = [UInt8](repeating: 0, count: 4096)
                var signalled = false
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    let all = log.withLockedValue { s -> String in s += String(decoding: buffer[0..<n], as: UTF8.self); return s }
                    if !signalled, all.contains("ready to accept connections") { signalled = true; ready.signal() }
                }
            }.start()
            guard ready.wait(timeout: .now() + seconds) == .success, process.isRunning else {
                throw Failure(description: "postgres did not become ready: \(log.withLockedValue { $0 })")
            }
            // The log line says so; a real connection shows it (retried within the deadline, on the server's answer).
            let deadline = Date().addingTimeInterval(seconds)
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { try? group.syncShutdownGracefully() }
            while true {
                do {
                    let c = try PostgresConnection.connect(on: group.next(), configuration: location(database: "postgres").configuration,
                                                           id: 1, logger: Logger(label: "test")).wait()
                    try c.close().wait()
                    break
                } catch {
                    if Date() > deadline || !process.isRunning { throw Failure(description: "cannot connect to postgres: \(error)") }
                    // Pacing of the retry; an exit ends the wait at once (and is kept for stop()).
                    if exited.wait(timeout: .now() + .milliseconds(20)) == .success { exited.signal() }
                }
            }
        } catch {
            stop()
            throw error
        }
    }

    /// The password of the superuser `qpq` (TCP logins need it).
    static let password = "qpq-test-password"

    func location(database: String, password: String? = PostgresServer.password) -> PostgresLocation {
        PostgresLocation(host: "127.0.0.1", port: port, user: "qpq", password: password, database: database)
    }

    /// The URL with the password in it, or without (`withPassword` false: for PGPASSWORD).
    func url(database: String, withPassword: Bool = true) -> String {
        "postgres://qpq\(withPassword ? ":" + Self.password : "")@127.0.0.1:\(port)/\(database)"
    }

    /// Creates a database (blocking).
    func createDatabase(_ name: String) throws {
        try execute("CREATE DATABASE \(name)", database: "postgres")
    }

    /// Runs one statement in `database` (blocking).
    func execute(_ sql: String, database: String) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let c = try PostgresConnection.connect(on: group.next(), configuration: location(database: database).configuration,
                                               id: 1, logger: Logger(label: "test")).wait()
        defer { try? (c.close() as EventLoopFuture<Void>).wait() }
        _ = try c.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test")).wait()
    }

    /// The first column of the first row of `sql` in `database`, as an integer (blocking).
    func integer(_ sql: String, database: String) throws -> Int64? {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let c = try PostgresConnection.connect(on: group.next(), configuration: location(database: database).configuration,
                                               id: 1, logger: Logger(label: "test")).wait()
        defer { try? (c.close() as EventLoopFuture<Void>).wait() }
        return try c.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test")).wait().rows.first?.decode(Int64.self)
    }

    var logText: String { log.withLockedValue { $0 } }

    /// Fast shutdown (SIGINT), SIGKILL after 20 s; then the directory goes (blocking).
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGINT)
            if exited.wait(timeout: .now() + 20) != .success {
                kill(process.processIdentifier, SIGKILL)
                _ = exited.wait(timeout: .now() + 5)
            }
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// Runs blocking work on a thread of its own and awaits it, so that the Swift pool never blocks.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        Thread {
            do { c.resume(returning: try body()) } catch { c.resume(throwing: error) }
        }.start()
    }
}

/// Holds `PostgresStore`'s delivery lock in an open transaction, so that a test can line up
/// several `Send`/`Commit` transactions behind it and release them together (blocking; off the Swift pool).
final class DeliveryLockHolder: @unchecked Sendable {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let connection: PostgresConnection
    private let logger = Logger(label: "test")

    init(_ location: PostgresLocation) throws {
        connection = try PostgresConnection.connect(on: group.next(), configuration: location.configuration, id: 1, logger: logger).wait()
        _ = try connection.query("BEGIN", logger: logger).wait()
        _ = try connection.query("SELECT pg_advisory_xact_lock(\(PostgresStore.deliveryLock))", logger: logger).wait()
    }

    /// Waits until `count` other transactions wait for the lock (at most `seconds`); false if they do not.
    func waitForWaiters(_ count: Int, seconds: Double = 60) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        let pause = DispatchSemaphore(value: 0)
        while Date() < deadline {
            let rows = try connection.query("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", logger: logger).wait()
            if let n = try rows.rows.first?.decode(Int64.self), n >= count { return true }
            _ = pause.wait(timeout: .now() + .milliseconds(20))  // pacing of the poll; the condition decides
        }
        return false
    }

    func release() throws {
        _ = try connection.query("COMMIT", logger: logger).wait()
        try (connection.close() as EventLoopFuture<Void>).wait()
        try group.syncShutdownGracefully()
    }
}
