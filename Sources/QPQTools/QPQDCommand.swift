import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QNSPQUIC
import QOPAQUE
import QPQProtocol
import QPQServer
import QPQServerNIO
import QPQServerPostgres
import QSSHTools

/// `qpqd`: the qpq messaging server (authentication and delivery service) inside QNSP.
package struct QPQDCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "qpqd",
        abstract: "Post-quantum group messaging server (qpq/1 inside QNSP, docs/messaging.md).",
        discussion: """
            qpqd keeps accounts (OPAQUE: it never sees passwords), devices with their ML-DSA-65
            identity keys, KeyPackages, groups and per-device queues in one SQLite database, or in
            a PostgreSQL database that several qpqd nodes share (--database postgres://...): each
            node then LISTENs on the channel qpq_delivery and pushes to its own connected devices
            what any node queued. Stop it with SIGTERM.
            """
    )

    @Option(name: .shortAndLong, help: "TCP port (0: any free port, printed on stderr).")
    var port: Int = 7420

    @Option(name: .long, help: "Address to listen on.")
    var listen: String = "127.0.0.1"

    @Option(name: .customShort("h"), help: ArgumentHelp("Host key file (from 'qssh-keygen -t host').", valueName: "file"))
    var hostKey: String = NSHomeDirectory() + "/.qpq/host_key"

    @Option(name: .long, help: ArgumentHelp("""
        SQLite database file (created if missing), or a PostgreSQL database shared by several qpqd nodes: \
        postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (the tables are created if missing; without a \
        password in the URL, PGPASSWORD's is used if set; no TLS, so reach it on loopback or a private network).
        """, valueName: "path|url"))
    var database: String = NSHomeDirectory() + "/.qpq/qpqd.sqlite"

    @Option(name: .long, help: ArgumentHelp("OPAQUE server setup (161 bytes; created with mode 0600 if missing).", valueName: "file"))
    var opaqueSetup: String = NSHomeDirectory() + "/.qpq/opaque_setup"

    @Option(name: .long, help: "Worker threads for storage (with PostgreSQL: also the number of pooled connections).")
    var threads: Int = 2

    @Option(name: .long, help: "SQLite only. full: fsync every accepted message (survives power loss); normal: fsync at checkpoints (survives a qpqd crash or restart). PostgreSQL: the server's synchronous_commit decides.")
    var durability: String = "full"

    @Option(name: .long, help: "Requests per second allowed on one connection (burst: twice that).")
    var requestsPerSecond: Double = 200

    @Option(name: .long, help: ArgumentHelp("Largest file blob (encrypted bytes) a client may upload.", valueName: "bytes"))
    var maxBlobSize: UInt64 = 128 * 1024 * 1024

    @Option(name: .long, help: ArgumentHelp("Most bytes of unexpired blobs per account.", valueName: "bytes"))
    var blobQuota: UInt64 = 1024 * 1024 * 1024

    @Flag(inversion: .prefixedNo, help: "Also serve over QUIC on UDP with the same port number (ALPN qpq/1; the QUIC certificate is kept next to the host key as HOSTKEY.quic-cert.pem / .quic-key.pem).")
    var quic = true

    @Flag(name: .long, help: "Print one line per request on stderr: a connection number, whether that connection had logged in, the request type and the outcome (no user, device or group names).")
    var logRequests = false

    package init() {}

    /// What a node does with another node's notifications (docs/messaging.md §9.1): wake the
    /// devices connected here, close revoked ones, and after a lost LISTEN wake everyone.
    package static func wakeLocalDevices(
        _ registry: QPQPushRegistry, warn: @escaping @Sendable (String) -> Void
    ) -> @Sendable (PostgresPushListener.Event) -> Void {
        { event in
            switch event {
            case .deliver(let devices): registry.notify(devices)
            case .revoke(let device): registry.revoke(device)
            case .disconnected: warn("qpqd: PostgreSQL LISTEN connection lost; reconnecting (other nodes' pushes wait until then)")
            case .resync:
                warn("qpqd: PostgreSQL LISTEN again; waking every connected device")
                registry.notifyAll()
            }
        }
    }

    package func run() throws {
        let host: HostKeyPair
        do {
            let text = try KeyFileIO.readPrivateKey(path: hostKey)
            guard case .host(let pair) = try PrivateKeyFile.decode(text) else { throw ToolError("\(hostKey) is not a host key") }
            host = pair
        } catch let e as ToolError {
            throw e
        } catch {
            throw ToolError("\(hostKey): \(error)")
        }
        let setup = try Self.loadOrCreateSetup(opaqueSetup)
        guard threads >= 1 else { throw ToolError("--threads must be at least 1") }
        let store: any QPQStore
        var postgres: PostgresStore?
        guard let mode = GRDBStore.Durability(rawValue: durability) else { throw ToolError("--durability is full or normal") }
        if PostgresLocation.isURL(database) {
            do {
                var location = try PostgresLocation(url: database)
                // PGPASSWORD keeps the password out of the process list (as for libpq's tools).
                if location.password == nil, let password = ProcessInfo.processInfo.environment["PGPASSWORD"] { location.password = password }
                let pg = try PostgresStore(location: location, connections: threads)
                store = pg
                postgres = pg
            } catch {
                throw ToolError("\(error.message)")
            }
        } else {
            do { store = try GRDBStore(path: database, durability: mode) } catch { throw ToolError("\(error.message)") }
        }
        guard requestsPerSecond > 0 else { throw ToolError("--requests-per-second must be positive") }
        var limits = QPQRateLimits()
        limits.requestsPerSecond = requestsPerSecond
        limits.burst = 2 * requestsPerSecond
        guard maxBlobSize > 0, maxBlobSize <= QPQLimits.maxBlobSize else { throw ToolError("--max-blob-size is 1-\(QPQLimits.maxBlobSize)") }
        limits.maxBlobSize = maxBlobSize
        limits.blobQuota = blobQuota
        let context = QPQServerContext(store: store, opaque: OPAQUEServer(setup: setup, configuration: .qpqDefault), limits: limits)

        signal(SIGPIPE, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let service: QPQService
        do {
            let log = logRequests ? QPQRequestLog { Terminal.warn($0) } : nil
            service = try QPQService.bind(group: group, host: listen, port: port, hostKey: host, context: context, threads: threads,
                                          requestLog: log).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw ToolError("cannot listen on \(listen) port \(port): \(error)")
        }
        // Several nodes on one PostgreSQL database: wake this node's devices for what the others queued.
        var listener: PostgresPushListener?
        if let postgres {
            let registry = service.registry
            do {
                listener = try PostgresPushListener(store: postgres, handler: Self.wakeLocalDevices(registry) { Terminal.warn($0) })
            } catch {
                try? service.closeSync()
                try? group.syncShutdownGracefully()
                throw ToolError("\(error.message)")
            }
            let l = postgres.location
            Terminal.warn("qpqd: PostgreSQL \(l.user)@\(l.host):\(l.port)/\(l.database), node \(postgres.node), LISTEN \(PostgresStore.channel)")
        }
        // QUIC after TCP, so that `-p 0` serves both on the port number the TCP listener got.
        var quicPort: Int?
        if quic {
            do {
                let credentials = try QUICCertificateStore.loadOrCreate(hostKeyPath: hostKey)
                quicPort = try service.startQUIC(group: group, host: listen, credentials: credentials).wait()
            } catch {
                Terminal.warn("qpqd: QUIC not started (UDP port \(service.port ?? port)): \(error); serving over TCP only")
            }
        }
        Terminal.warn("qpqd: host key \(host.publicKey.fingerprint)")
        if let quicPort { Terminal.warn("qpqd: QUIC on UDP \(listen):\(quicPort) (ALPN \(QUICServiceRegistry.qpq))") }
        Terminal.warn("qpqd: listening on \(listen):\(service.port ?? port)")

        // SIGTERM: stop listening, finish the storage work in flight, exit 0.
        let done = DispatchSemaphore(value: 0)
        let term = DispatchSource.makeSignalSource(signal: SIGTERM, queue: DispatchQueue(label: "qpqd.sigterm"))
        term.setEventHandler { done.signal() }
        term.resume()
        done.wait()
        term.cancel()
        listener?.stop()
        try? service.closeSync()
        postgres?.close()
        try? group.syncShutdownGracefully()
        Terminal.warn("qpqd: stopped")
    }

    /// Reads the OPAQUE setup, or creates one (0600). A new setup invalidates every registration.
    static func loadOrCreateSetup(_ path: String) throws -> OPAQUEServerSetup {
        if FileManager.default.fileExists(atPath: path) {
            do {
                let bytes = try KeyFileIO.readExactly(path: path, count: OPAQUEServerSetup.serializedSize)
                return try OPAQUEServerSetup(serialized: bytes)
            } catch {
                throw ToolError("\(path): not an OPAQUE server setup: \(error)")
            }
        }
        do {
            let setup = try OPAQUEServerSetup.generate()
            let dir = (path as NSString).deletingLastPathComponent
            if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
            guard fd >= 0 else { throw ToolError("cannot create \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let bytes = setup.serialized.copiedBytes()
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == bytes.count else { throw ToolError("cannot write \(path)") }
            return setup
        } catch let e as ToolError {
            throw e
        } catch {
            throw ToolError("cannot create the OPAQUE setup: \(error)")
        }
    }
}
