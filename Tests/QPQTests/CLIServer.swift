import Foundation
import QNSPCrypto
import Testing

/// A real qpqd process in a temporary directory, and qpq processes run as users against it
/// (each user has its store `DIR/USER.store` and the password `password of USER`).
struct CLIServer {
    let dir: TempDir
    let server: QPQDProcess
    let common: [String]

    /// Starts qpqd on a free port with `extra` arguments.
    static func start(_ extra: [String] = [], comment: String = "cli test") async throws -> CLIServer {
        let dir = TempDir()
        let host = try HostKeyPair.generate(comment: comment)
        try KeyFileIO.writePrivateKey(try PrivateKeyFile.encode(.host(host)), path: dir.path + "/host_key")
        try KeyFileIO.writePublicKey(PublicKeyLine.host(host.publicKey, comment: "qpqd").text + "\n", path: dir.path + "/host_key.pub")
        let server = try QPQDProcess(arguments: ["-p", "0", "-h", dir.path + "/host_key", "--database", dir.path + "/db.sqlite",
                                                 "--opaque-setup", dir.path + "/opaque"] + extra)
        let port: Int
        do { port = try await server.waitForPort() } catch {
            server.killIfRunning()
            dir.cleanup()
            throw error
        }
        return CLIServer(dir: dir, server: server, common: ["--server", "127.0.0.1:\(port)", "--host-key", dir.path + "/host_key.pub"])
    }

    /// Stops qpqd if it still runs and removes the directory (for a `defer`).
    func cleanup() {
        server.killIfRunning()
        dir.cleanup()
    }

    /// Runs qpq as `who`; `status` is the exit status it must have (nil: any).
    @discardableResult
    func qpq(_ who: String, _ args: [String], status: Int32? = 0, extra: [String: String] = [:]) async throws -> ToolRun.Result {
        let r = try await ToolRun.run("qpq", args + ["--store", dir.path + "/\(who).store"] + common,
                                      environment: ["QPQ_PASSWORD": "password of \(who)"].merging(extra) { $1 }, seconds: 120)
        if let status { #expect(r.status == status, "qpq \(args) as \(who): \(r.stderr)") }
        #expect(!r.stderr.contains("Cannot schedule"), "qpq \(args) as \(who): \(r.stderr)")
        return r
    }

    /// Runs `body` for every item, at most `width` at once (qpq processes; the waits do not hold
    /// the Swift pool's threads), and returns the results in the items' order.
    @discardableResult
    static func concurrently<T: Sendable, R: Sendable>(_ items: [T], width: Int = 4,
                                                       _ body: @escaping @Sendable (T) async throws -> R) async throws -> [R] {
        try await withThrowingTaskGroup(of: (Int, R).self) { group in
            var results = [R?](repeating: nil, count: items.count)
            var next = 0
            func startNext() {
                guard next < items.count else { return }
                let (i, item) = (next, items[next])
                next += 1
                group.addTask { (i, try await body(item)) }
            }
            for _ in 0..<min(width, items.count) { startNext() }
            while let (i, r) = try await group.next() {
                results[i] = r
                startNext()
            }
            return results.compactMap { $0 }
        }
    }
}
