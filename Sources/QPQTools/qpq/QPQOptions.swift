import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QSSHTools

/// Options shared by every subcommand.
struct QPQOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Local encrypted store.", valueName: "path"))
    var store: String = NSHomeDirectory() + "/.qpq/client.store"

    @Option(name: .long, help: ArgumentHelp("Server (register, login).", valueName: "host:port"))
    var server: String = "127.0.0.1:7420"

    @Option(name: .long, help: ArgumentHelp("The server's host public key file (register, login).", valueName: "file"))
    var hostKey: String?

    @Option(name: .long, help: ArgumentHelp("tcp, quic (UDP, ALPN qpq/1, same port number), or auto (QUIC first, TCP if QUIC has not answered within 1.5 s).", valueName: "carrier"))
    var transport: String = "tcp"

    @Flag(name: .shortAndLong, help: "Say on stderr which carrier the connection uses.")
    var verbose = false

    func validate() throws {
        guard QPQCarrier(rawValue: transport) != nil else { throw ValidationError("--transport is tcp, quic or auto, not \(transport)") }
    }

    /// Connects over the chosen carrier (docs/messaging.md §1.1). `purpose` names the connection in
    /// the `-v` line (the sealed-sender one says so).
    func connect(group: EventLoopGroup, host: String, port: Int, hostKey: HostPublicKey,
                 purpose: String = "") async throws(QPQClientError) -> QPQConnection {
        let carrier = QPQCarrier(rawValue: transport) ?? .tcp
        let conn = try await QPQConnection.connect(group: group, host: host, port: port, hostKey: hostKey, carrier: carrier)
        if verbose {
            let how = conn.carrier == .quic ? "QUIC (UDP, ALPN \(QPQConnection.alpn))" : (carrier == .auto ? "TCP (QUIC did not answer)" : "TCP")
            Terminal.warn("qpq: connected to \(host):\(port) over \(how)\(purpose)")
        }
        return conn
    }

    func password() throws -> String {
        if let p = ProcessInfo.processInfo.environment["QPQ_PASSWORD"], !p.isEmpty { return p }
        guard let p = Terminal.prompt("Password: ", secret: true), !p.isEmpty else { throw ToolError("no password given") }
        return p
    }

    func serverAddress() throws -> (String, Int) {
        guard let colon = server.lastIndex(of: ":"), let port = Int(server[server.index(after: colon)...]), (1...65535).contains(port) else {
            throw ToolError("--server wants host:port, not \(server)")
        }
        return (String(server[..<colon]), port)
    }

    func pinnedHostKey() throws -> (HostPublicKey, String) {
        guard let hostKey else { throw ToolError("--host-key FILE is needed to reach the server the first time") }
        do {
            let text = try KeyFileIO.readText(path: hostKey).trimmingCharacters(in: .whitespacesAndNewlines)
            guard case .host(let key, _) = try PublicKeyLine(parsing: text) else { throw ToolError("\(hostKey) is not a host public key") }
            return (key, text)
        } catch let e as ToolError {
            throw e
        } catch {
            throw ToolError("\(hostKey): \(error)")
        }
    }

    func loadState(_ password: String) throws -> QPQClientState {
        do { return try QPQLocalStore.load(path: store, passphrase: password) } catch {
            throw ToolError("\(store): \(error)")
        }
    }

    func save(_ state: QPQClientState, _ password: String) throws {
        do { try QPQLocalStore.save(state, path: store, passphrase: password) } catch { throw ToolError("\(store): \(error)") }
    }
}

/// Saves the state in the middle of a command (so an interrupted transfer can resume).
typealias QPQCheckpoint = @Sendable (QPQClientState) throws(QPQClientError) -> Void

/// Connects to the state's server, resumes the session, runs `body`, saves the state. Sends and
/// commits go on a second connection, opened when the first one is needed, that never logs in
/// (sealed sender, docs/messaging.md §8).
func withMessenger<T: Sendable>(_ options: QPQOptions, save: Bool = true,
                                _ body: @escaping @Sendable (QPQMessenger, QPQConnection) async throws -> T) throws -> T {
    try withMessenger(options, save: save) { m, conn, _ in try await body(m, conn) }
}

/// As ``withMessenger(_:save:_:)``; `body` also gets a checkpoint that saves the state at once.
func withMessenger<T: Sendable>(_ options: QPQOptions, save: Bool = true,
                                _ body: @escaping @Sendable (QPQMessenger, QPQConnection, QPQCheckpoint) async throws -> T) throws -> T {
    let password = try options.password()
    let state = try options.loadState(password)
    let hostKey: HostPublicKey
    do {
        guard case .host(let key, _) = try PublicKeyLine(parsing: state.hostKey) else { throw ToolError("bad host key in the store") }
        hostKey = key
    } catch {
        throw ToolError("bad host key in the store: \(error)")
    }
    let store = options.store
    let checkpoint: QPQCheckpoint = { (s: QPQClientState) throws(QPQClientError) in
        do { try QPQLocalStore.save(s, path: store, passphrase: password) } catch { throw .file("\(store): \(error)") }
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    let (value, final) = try BlockingAsync.run { () async throws -> (T, QPQClientState) in
        let conn = try await options.connect(group: group, host: state.host, port: state.port, hostKey: hostKey)
        let sealed = QPQLazyConnection { () async throws(QPQClientError) -> QPQConnection in
            try await options.connect(group: group, host: state.host, port: state.port, hostKey: hostKey,
                                      purpose: " (for sends and commits; never logs in)")
        }
        do {
            let messenger = try QPQMessenger(state: state, transport: conn, sealed: sealed)
            try await messenger.resume()
            let value = try await body(messenger, conn, checkpoint)
            await sealed.close()
            await conn.close()
            return (value, messenger.state)
        } catch {
            await sealed.close()
            await conn.close()
            throw error
        }
    }
    if save { try options.save(final, password) }
    return value
}

extension QPQMessenger: @unchecked Sendable {}  // used by one task at a time in the CLI
