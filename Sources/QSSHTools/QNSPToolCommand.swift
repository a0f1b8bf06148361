import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSP
import QNSPCrypto
import QNSPNIO
import QNSPQUIC

/// `qnsp`: a post-quantum tunnel for any byte stream (netcat over QNSP).
public struct QNSPToolCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "qnsp",
        abstract: "Carry a byte stream through a QNSP post-quantum tunnel.",
        discussion: """
            'qnsp serve' accepts QNSP connections (over TCP, or one over stdin/stdout with --stdio),
            authenticates users by the ML-DSA-65 keys in an authorized_keys file, and connects each
            session's plaintext to --forward HOST:PORT, echoes it back (--echo)
            or counts and discards it (--discard).
            'qnsp connect' opens a session and joins it to its own stdin/stdout.

            Example:
              qssh-keygen -t host -f host_key -N ''
              qssh-keygen -t user -f id -N ''
              cp id.pub authorized_keys
              qnsp serve -p 22222 -h host_key --authorized-keys authorized_keys --echo &
              echo hello | qnsp connect -p 22222 -i id --known-hosts kh --accept-new 127.0.0.1
            """,
        subcommands: [Serve.self, Connect.self])

    public init() {}

    /// Shared protocol options.
    struct ProtocolOptions: ParsableArguments {
        @Option(name: .long, help: "Cell size in bytes (256-16384, multiple of 16).")
        var cellSize: Int = QNSPConfiguration.defaultCellSize

        @Option(name: .long, help: "Update the sending key after this many bytes.")
        var rekeyBytes: UInt64 = 1 << 30

        @Option(name: .long, help: "Update the sending key after this many seconds.")
        var rekeySeconds: Int64 = 3600

        @Option(name: .long, help: "Ciphers in order of preference: aes256-gcm,chacha20-poly1305.")
        var ciphers: String = "aes256-gcm,chacha20-poly1305"

        @Option(name: .long, help: "Cover traffic: off, random (dummy bursts, jittered sends) or constant (a fixed cell rate; docs/protocol.md §9.6).")
        var padding: String = "off"

        func options() throws -> QNSPBootstrap.Options {
            guard QNSPConfiguration.validate(cellSize: cellSize) else {
                throw ToolError("--cell-size must be a multiple of 16 between 256 and 16384")
            }
            var o = QNSPBootstrap.Options()
            o.configuration.cellSize = cellSize
            o.configuration.rekeyAfterBytes = max(1, rekeyBytes)
            o.configuration.ciphers = try ciphers.split(separator: ",").map {
                guard let a = AEADAlgorithm(name: String($0)) else { throw ToolError("unknown cipher '\($0)'") }
                return a
            }
            o.rekeyInterval = rekeySeconds > 0 ? .seconds(rekeySeconds) : nil
            o.padding = try StealthArgument.padding(padding)
            return o
        }
    }

    // MARK: serve

    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Accept QNSP sessions and echo or forward their bytes.")

        @Option(name: .customShort("l"), help: "Address to listen on.")
        var listen: String = "127.0.0.1"

        @Option(name: .customShort("p"), help: "Port to listen on (0 picks a free port, printed on stderr).")
        var port: Int = 22222

        @Option(name: .customShort("h"), help: "Host key file (from 'qssh-keygen -t host').")
        var hostKey: String

        @Option(name: .long, help: "authorized_keys file listing permitted user keys.")
        var authorizedKeys: String = NSHomeDirectory() + "/.qssh/authorized_keys"

        @Flag(name: .long, help: "Echo each session's bytes back.")
        var echo = false

        @Flag(name: .long, help: "Discard each session's bytes; on end of input, reply with the byte count.")
        var discard = false

        @Option(name: .long, help: "Connect each session to HOST:PORT.")
        var forward: String?

        @Flag(name: .long, help: "Serve one session over stdin/stdout instead of listening.")
        var stdio = false

        @Flag(name: .long, help: "Also serve over QUIC on UDP with the same port number (ALPN qnsp/1; the QUIC certificate is kept next to the host key as HOSTKEY.quic-cert.pem / .quic-key.pem).")
        var quic = false

        @Flag(name: .shortAndLong, help: "Log sessions to stderr.")
        var verbose = false

        @Flag(name: .long, help: "Stealth mode (docs/protocol.md §9): answer only clients with this host key's stealth line ('qssh-keygen --stealth-line -f HOSTKEY').")
        var stealth = false

        @Flag(name: .long, help: "With --stealth: expect clients' first flights to start with a printable prefix (--mimic on the clients; docs/protocol.md §9.8).")
        var mimic = false

        @OptionGroup var proto: ProtocolOptions

        func run() throws {
            guard [echo, discard, forward != nil].filter({ $0 }).count == 1 else {
                throw ToolError("choose exactly one of --echo, --discard and --forward HOST:PORT")
            }
            let target = try forward.map(parseHostPort)
            let text = try KeyFileIO.readPrivateKey(path: hostKey)
            guard case .host(let host) = try PrivateKeyFile.decode(text) else { throw ToolError("\(hostKey) is not a host key") }
            let authorized = try AuthorizedKeys.load(path: authorizedKeys)
            for p in authorized.problems { Terminal.warn("qnsp serve: \(authorizedKeys):\(p.line): ignored: \(p.reason)") }
            let keys = authorized
            let verbose = self.verbose
            let discard = self.discard
            let params = QNSPConnection.ServerParameters(hostKeys: [host]) { user, key in
                keys.contains(key) ? .accept : .reject("key \(key.fingerprint) is not authorized")
            }
            var configured = try proto.options()
            if mimic && !stealth { throw ToolError("--mimic needs --stealth") }
            if stealth { configured.stealth = StealthArgument.serverOptions(host: host, mimic: mimic) }
            let options = configured
            let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            let initializer: @Sendable (Channel, EventLoopFuture<QNSPSessionInfo>) -> EventLoopFuture<Void> = { channel, handshake in
                handshake.whenComplete { result in
                    guard verbose else { return }
                    switch result {
                    case .success(let info): Terminal.warn("qnsp serve: session for \(info.username) (\(info.userKeyFingerprint)) with \(info.cipher), cell \(info.cellSize)")
                    case .failure(let error): Terminal.warn("qnsp serve: handshake failed: \(error)")
                    }
                }
                if let (thost, tport) = target {
                    return ClientBootstrap(group: channel.eventLoop)
                        .channelOption(.allowRemoteHalfClosure, value: true)
                        .connect(host: thost, port: tport)
                        .flatMapThrowing { outbound in
                            let (a, b) = GlueHandler.matchedPair()
                            try outbound.pipeline.syncOperations.addHandler(b)
                            try channel.pipeline.syncOperations.addHandler(a)
                        }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(discard ? DiscardHandler() as ChannelHandler : EchoHandler())
                }
            }
            if stdio {
                let channel = try QNSPBootstrap.stdio(
                    group: group, input: 0, output: 1, connection: { QNSPConnection(server: params, configuration: options.configuration) },
                    isClient: false, options: options, initializer: initializer).wait()
                try channel.closeFuture.wait()
                return
            }
            let server = try QNSPBootstrap.bindServer(
                group: group, host: listen, port: port, parameters: params, options: options, childInitializer: initializer
            ).wait()
            let boundPort = server.localAddress?.port ?? port
            Terminal.warn("qnsp serve: listening on \(listen):\(boundPort) (host key \(host.publicKey.fingerprint)\(stealth ? ", stealth mode" : ""))")
            if quic {
                if stealth { throw ToolError("--quic and --stealth exclude each other: stealth mode is TCP only (a QUIC endpoint answers anyone)") }
                // The same sessions over QUIC (ALPN qnsp/1), on UDP with the TCP port's number.
                let credentials = try QUICCertificateStore.loadOrCreate(hostKeyPath: hostKey)
                var services = QUICServiceRegistry()
                services.register(
                    QUICServiceRegistry.qnsp,
                    QNSPQUICBootstrap.service(parametersFor: { _, _ in params }, options: options, childInitializer: initializer))
                let endpoint: QUICEndpoint
                do {
                    endpoint = try QUICEndpoint.bind(group: group, host: listen, port: boundPort, server: credentials, services: services).wait()
                } catch {
                    throw ToolError("cannot serve QUIC on UDP \(listen) port \(boundPort): \(ConnectErrorText.describe(error))")
                }
                Terminal.warn("qnsp serve: QUIC on UDP \(listen):\(endpoint.localAddress?.port ?? boundPort) (ALPN \(QUICServiceRegistry.qnsp))")
            }
            try server.closeFuture.wait()
        }
    }

    // MARK: connect

    struct Connect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open a QNSP session and join it to stdin/stdout.")

        @Option(name: .customShort("p"), help: "Server port.")
        var port: Int = 22222

        @Option(name: .customShort("i"), help: "Identity (user key) file.")
        var identity: String = NSHomeDirectory() + "/.qssh/id_mldsa65"

        @Option(name: .customShort("l"), help: "User name to log in as.")
        var user: String = ProcessInfo.processInfo.environment["USER"] ?? "user"

        @Option(name: .long, help: "known_hosts file.")
        var knownHosts: String = NSHomeDirectory() + "/.qssh/known_hosts"

        @Flag(name: .long, help: "Trust and record an unknown host key without asking (never a changed one).")
        var acceptNew = false

        @Flag(name: .long, help: "Never prompt; refuse unknown host keys.")
        var batch = false

        @Flag(name: .shortAndLong, help: "Print session details to stderr.")
        var verbose = false

        @Option(name: .long, help: ArgumentHelp("Stealth mode: the server's stealth line, its base64 part, or a file holding it.", valueName: "line|file"))
        var stealth: String?

        @Flag(name: .long, help: "With --stealth: start the first flight with a printable prefix that meets published first-packet exemption rules (the server needs --mimic too).")
        var mimic = false

        @Option(name: .long, help: "tcp, quic (UDP on the same port, ALPN qnsp/1; needs 'qnsp serve --quic') or auto (QUIC within 1.5 s, else TCP).")
        var transport: String = "tcp"

        @OptionGroup var proto: ProtocolOptions

        @Argument(help: "Server host name or address.")
        var host: String

        func run() throws {
            let outcome = try runSession()
            if outcome != 0 { throw ExitCode(outcome) }
        }

        func runSession() throws -> Int32 {
            var options = try proto.options()
            if mimic && stealth == nil { throw ToolError("--mimic needs --stealth") }
            if let stealth { options.stealth = try StealthArgument.clientOptions(stealth, mimic: mimic) }
            guard let carrier = TunnelClient.Transport(rawValue: transport.lowercased()) else {
                throw ToolError("--transport must be tcp, quic or auto, not '\(transport)'")
            }
            var client = TunnelClient(
                host: host, port: port, identityPath: identity, user: user, knownHostsPath: knownHosts,
                acceptNew: acceptNew, batch: batch, verbose: verbose, options: options, toolName: "qnsp")
            client.transport = carrier
            client.alpn = QUICServiceRegistry.qnsp
            return try client.runStdio()
        }
    }
}

/// Loads a user key for a client, asking for its passphrase on the terminal when needed.
public enum ClientIdentity {
    public static func load(path: String, interactive: Bool) throws -> UserKeyPair {
        let text = try KeyFileIO.readPrivateKey(path: path)
        let header = try PrivateKeyFile.readHeader(text)
        var passphrase: String?
        if header.isEncrypted {
            guard interactive, let p = Terminal.prompt("Enter passphrase for key '\(path)': ", secret: true) else {
                throw ToolError("\(path) is passphrase-protected and there is no terminal to ask for it")
            }
            passphrase = p
        }
        guard case .user(let user) = try PrivateKeyFile.decode(text, passphrase: passphrase) else {
            throw ToolError("\(path) is not a user key")
        }
        return user
    }
}

func parseHostPort(_ s: String) throws -> (String, Int) {
    guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else {
        throw ToolError("expected HOST:PORT, got '\(s)'")
    }
    var host = String(s[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    return (host, port)
}
