import Foundation
import Testing

/// A suite trait: one PostgreSQL server (``PostgresServer``) for the whole suite, started before
/// its first test and stopped after its last, instead of one per test case (initdb and a start
/// take most of a case's time). Each case still gets a database of its own
/// (``SharedPostgres/freshDatabase()``: `CREATE DATABASE` with a unique name), so cases stay
/// independent. Without PostgreSQL (and not required) the suite runs without a server and the
/// PostgreSQL cases skip, as before.
struct SharedPostgres: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    /// The suite's server while its tests run (nil outside such a suite).
    @TaskLocal static var server: PostgresServer?

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard PostgresServer.enabled else {
            try await function()
            return
        }
        let server = try await offPool { try PostgresServer() }
        do {
            try await Self.$server.withValue(server) { try await function() }
        } catch {
            try await offPool { server.stop() }
            throw error
        }
        try await offPool { server.stop() }
    }

    /// A new, empty database on `server` (blocking; off the Swift pool); returns its name.
    static func freshDatabase(on server: PostgresServer) throws -> String {
        let name = "qpq_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try server.createDatabase(name)
        return name
    }
}

extension Trait where Self == SharedPostgres {
    /// One PostgreSQL server for the suite, a fresh database per test case (see ``SharedPostgres``).
    static var sharedPostgres: Self { SharedPostgres() }
}
