import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSP
import QNSPCrypto
import QNSPNIO
import QNSPQUIC
import QSSHSession

/// Opens an authenticated QNSP session as a client tool does: loads the identity, checks
/// known_hosts (trust on first use, loud refusal of a changed key), connects, and records
/// a newly trusted host key. Shared by `qnsp connect` and `qssh`.
public struct TunnelClient {
    public var host: String
    public var port: Int
    public var identityPath: String
    public var user: String
    public var knownHostsPath: String
    public var acceptNew: Bool
    public var batch: Bool
    public var verbose: Bool
    public var options: QNSPBootstrap.Options
    /// Prefix for messages ("qnsp", "qssh").
    public var toolName: String
    /// Run this shell command and speak QNSP over its stdin/stdout instead of connecting
    /// (ProxyCommand, ProxyJump). `%h`, `%p` and `%r` are already substituted.
    public var proxyCommand: String?
    /// Record newly trusted hosts hashed (OpenSSH's HashKnownHosts).
    public var hashKnownHosts = false
    /// The carrier: TCP, QUIC (one stream of a QUIC connection, docs/protocol.md §8), or QUIC
    /// first with TCP as the fallback when QUIC does not answer within `quicDeadline`.
    public var transport: Transport = .tcp
    /// The QUIC ALPN naming the service (`qssh/1` for qsshd sessions, `qnsp/1` for `qnsp serve`).
    public var alpn = QUICServiceRegistry.qssh
    public var quicDeadline: TimeAmount = .milliseconds(1500)
    /// With no identity file (and no agent key): sign the handshake with a fresh throwaway key,
    /// so that a server offering password login (docs/protocol.md §7.10) can ask for a password.
    public var passwordFallback = false

    /// `-o Transport=tcp|quic|auto`.
    public enum Transport: String, Sendable, CaseIterable {
        case tcp, quic, auto
    }

    public init(
        host: String, port: Int, identityPath: String, user: String, knownHostsPath: String,
        acceptNew: Bool, batch: Bool, verbose: Bool, options: QNSPBootstrap.Options, toolName: String
    ) {
        self.host = host; self.port = port; self.identityPath = identityPath; self.user = user
        self.knownHostsPath = knownHostsPath; self.acceptNew = acceptNew; self.batch = batch
        self.verbose = verbose; self.options = options; self.toolName = toolName
    }

    /// Connects and completes the handshake; `initializer` adds the handlers that see the plaintext.
    public func open(
        group: EventLoopGroup, initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) throws -> (Channel, QNSPSessionInfo) {
        // Over QUIC the UDP endpoint binds while the key and known_hosts load (binding sends
        // nothing: whether QUIC is tried at all is decided after known_hosts, by its stealth line).
        let prebound = proxyCommand == nil && transport != .tcp && options.stealth == nil
            ? QUICStreamClient.bind(group: group, host: host, quic: quicConfiguration()) : nil
        let preboundTaken = NIOLockedValueBox(false)
        defer {
            if !preboundTaken.withLockedValue({ $0 }) { prebound?.whenSuccess { $0.close().whenComplete { _ in } } }
        }
        let identity: any UserAuthSigner
        do {
            identity = try ClientIdentity.signer(path: identityPath, interactive: !batch, verbose: verbose, toolName: toolName)
        } catch where passwordFallback && !FileManager.default.fileExists(atPath: identityPath) {
            // No key at all: a throwaway one opens the tunnel; the server decides (password or refusal).
            identity = try UserKeyPair.generate(comment: "throwaway")
            // A missing default identity is normal for password users; a named one is worth a warning.
            if verbose || identityPath != ClientOptions.defaultIdentity {
                Terminal.warn("\(toolName): \(error); continuing with a throwaway key (password login only)")
            }
        }
        let pattern = KnownHosts.hostPattern(host: host, port: port, defaultPort: 22222)
        let known = try KnownHosts.load(path: knownHostsPath)
        let (entry, lookup) = known.lookup(pattern)
        var pinned: HostPublicKey?
        if case .known(let key) = lookup { pinned = key }
        for problem in known.problems { Terminal.warn("\(toolName): \(knownHostsPath):\(problem.line): \(problem.reason) (line ignored)") }
        if let pinned, let line = known.revokedLine(blob: pinned.blob, pattern) {
            throw ToolError("the host key pinned for '\(pattern)' is marked @revoked (\(knownHostsPath):\(line)); refusing to connect")
        }
        let authorities = pinned == nil ? known.certificateAuthorities(pattern) : []
        let certification = NIOLockedValueBox<HostCertification?>(nil)
        // A stealth line stored beside the host key turns stealth mode on (docs/protocol.md §9.1).
        var options = self.options
        if options.stealth == nil, let line = known.stealthLine(pattern) { options.stealth = StealthOptions(line: line) }
        let acceptNew = self.acceptNew, batch = self.batch, host = self.host
        let revokedAnnounced: @Sendable (HostPublicKey) -> Int? = { key in known.revokedLine(blob: key.blob, pattern) }
        var params = QNSPConnection.ClientParameters(username: user, signer: identity, pinnedHostKey: pinned) { key in
            if let line = revokedAnnounced(key) {
                certification.withLockedValue { $0 = .refused("its host key is marked @revoked (line \(line))") }
                return false
            }
            if acceptNew { return true }
            guard !batch, Terminal.stdinIsTTY || FileManager.default.isReadableFile(atPath: "/dev/tty") else { return false }
            let answer = Terminal.prompt(
                "The authenticity of host '\(host)' can't be established.\nQNSP host key fingerprint is \(key.fingerprint).\nAre you sure you want to continue connecting (yes/no)? ",
                secret: false)
            return answer?.lowercased() == "yes"
        }
        params.certificate = ClientIdentity.certificate(for: identityPath, key: identity.publicKey, verbose: verbose, toolName: toolName)
        if !authorities.isEmpty {
            // A host under a certificate authority must present a valid certificate: no prompt and
            // no fallback to trust on first use (a certificate stripped on the way would otherwise
            // turn into a question the user answers with "yes").
            params.verifyHostCertificate = { key, certificate in
                let verdict = HostCertification.check(
                    key: key, certificate: certificate, authorities: authorities, principal: host,
                    revokedLine: revokedAnnounced(key), revokedCA: { known.revokedLine(blob: $0, pattern) }, now: UInt64(Date().timeIntervalSince1970))
                certification.withLockedValue { $0 = verdict }
                if case .accepted = verdict { return true }
                return false
            }
        }
        let connected: (Channel, EventLoopFuture<QNSPSessionInfo>)
        if let proxyCommand {
            connected = try openThroughProxy(proxyCommand, group: group, parameters: params, options: options, initializer: initializer)
        } else if let quic = try connectQUIC(group: group, parameters: params, options: options, endpoint: prebound.map { endpoint in
            preboundTaken.withLockedValue { $0 = true }
            return endpoint
        }, initializer: initializer) {
            connected = quic
        } else {
            do {
                connected = try QNSPBootstrap.connect(group: group, host: host, port: port, parameters: params, options: options, initializer: initializer).wait()
            } catch {
                throw ToolError("connect to \(host) port \(port): \(ConnectErrorText.describe(error))")
            }
        }
        let (channel, handshake) = connected
        let info: QNSPSessionInfo
        do {
            info = try handshake.wait()
        } catch let error as QNSPError {
            if case .hostKeyNotTrusted = error, case .refused(let why)? = certification.withLockedValue({ $0 }) {
                let under = authorities.first.map { " (covered by @cert-authority at \(knownHostsPath):\($0.line))" } ?? ""
                throw ToolError("host '\(host)'\(under): \(why); refusing to connect")
            }
            if options.stealth != nil, Self.isSilence(error) { throw ToolError("connection to \(host) port \(port): \(StealthArgument.noAnswer) (\(error))") }
            throw ToolError(explain(error, entry: entry))
        } catch {
            throw ToolError("connection to \(host) port \(port) failed during the handshake: \(ConnectErrorText.describe(error))")
        }
        if verbose, let offset = info.retryClockOffset {
            let clock = abs(offset) > 5 ? " (the server's clock is \(offset) s ahead of ours)" : ""
            Terminal.warn("\(toolName): the server asked for a cookie round trip before the key exchange\(clock)")
        }
        if verbose {
            Terminal.warn("\(toolName): authenticated to \(host) (\(info.hostKey.fingerprint)) as \(info.username) using \(info.cipher), cell \(info.cellSize)")
        }
        if case .accepted(let certificate)? = certification.withLockedValue({ $0 }) {
            // Certified hosts are not pinned: the CA line vouches for them on every connection.
            if verbose {
                Terminal.warn(
                    "\(toolName): host certificate '\(certificate.keyID)' serial \(certificate.serial) for '\(host)' signed by CA \(Fingerprint.sha256(certificate.caKey.rawRepresentation))")
            }
        } else if pinned == nil {
            _ = try known.appending(pattern: pattern, key: info.hostKey, hash: hashKnownHosts)
            Terminal.warn("\(toolName): permanently added '\(pattern)' to the list of known hosts (\(knownHostsPath)).")
        }
        return (channel, info)
    }

    /// Test hook for roaming: with this environment variable set to `SIGUSR2`, the client moves its
    /// QUIC connection to a fresh UDP socket (a new port) on each SIGUSR2, as a network change would.
    /// Debug builds only (the tests'); release builds ignore it.
    package static let rebindHook = "QSSH_TEST_QUIC_REBIND"

    /// QUIC per `transport`: nil to use TCP instead (transport tcp, or auto when QUIC failed).
    /// `options`: the session's, with a stealth line of known_hosts applied (no QUIC then).
    func connectQUIC(
        group: EventLoopGroup, parameters: QNSPConnection.ClientParameters, options: QNSPBootstrap.Options,
        endpoint: @autoclosure () -> EventLoopFuture<QUICEndpoint>? = nil,
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) throws -> (Channel, EventLoopFuture<QNSPSessionInfo>)? {
        guard transport != .tcp else { return nil }
        if options.stealth != nil {
            // A stealth server serves TCP only (a QUIC handshake is itself recognisable).
            if transport == .quic { throw ToolError("stealth mode runs over TCP only; drop Transport=quic or the stealth line") }
            return nil
        }
        let quic = quicConfiguration()
        do {
            let connected = try QNSPQUICBootstrap.connect(
                group: group, host: host, port: port, alpn: alpn, parameters: parameters, options: options, quic: quic,
                endpoint: endpoint(), initializer: initializer
            ).wait()
            if verbose { Terminal.warn("\(toolName): connected to \(host) port \(port) over QUIC (UDP, ALPN \(alpn))") }
            return connected
        } catch {
            if transport == .auto {
                if verbose { Terminal.warn("\(toolName): QUIC to \(host) port \(port) failed (\(error)); using TCP") }
                return nil
            }
            throw ToolError("connect to \(host) port \(port) over QUIC: \(error)")
        }
    }

    /// The QUIC endpoint's settings for this client (the handshake's deadline with auto, the
    /// roaming test hook in debug builds).
    func quicConfiguration() -> QUICEndpoint.Configuration {
        var quic = QUICEndpoint.Configuration()
        if transport == .auto { quic.parameters.handshakeTimeout = quicDeadline }
        #if DEBUG
        // A test hook only: release builds (what ships) do not read the variable (§8.9).
        if ProcessInfo.processInfo.environment[Self.rebindHook] == "SIGUSR2" {
            let verbose = verbose, toolName = toolName
            quic.onEndpoint = { endpoint in RoamingHook.install(endpoint: endpoint, verbose: verbose, toolName: toolName) }
        }
        #endif
        return quic
    }

    /// Opens the session and joins its plaintext to stdin/stdout until it ends (`qnsp connect`,
    /// `qssh tunnel`). Returns 1 when stdout could not be written; a lost connection throws.
    public func runStdio() throws -> Int32 {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // The group is not shut down: the stdin thread may still touch the channel until the
        // process exits, and scheduling on a stopped loop is an error. The process ends right after.
        let stdoutFailed = NIOLockedValueBox(false)
        let lost = NIOLockedValueBox<String?>(nil)
        let (channel, _) = try open(group: group) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(StdoutWriter(failure: stdoutFailed, connectionError: lost))
            }
        }
        StdinPump.start(into: channel)
        try? channel.closeFuture.wait()
        if let why = lost.withLockedValue({ $0 }) { throw ToolError("connection to \(host) lost: \(why)") }
        return stdoutFailed.withLockedValue { $0 } ? 1 : 0
    }

    /// Starts the proxy command and runs the QNSP client over its stdin/stdout; its stderr is ours.
    func openThroughProxy(
        _ command: String, group: EventLoopGroup, parameters: QNSPConnection.ClientParameters, options: QNSPBootstrap.Options,
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) throws -> (Channel, EventLoopFuture<QNSPSessionInfo>) {
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(["/bin/sh", "-c", command], environment: ProcessInfo.processInfo.environment,
                                           directory: nil, inheritStderr: true, newSession: false)
        } catch {
            throw ToolError("cannot start the proxy command '\(command)': \(error)")
        }
        Thread.detachNewThread { _ = child.waitForExit() }  // reaped when it ends
        let handshake = NIOLockedValueBox<EventLoopFuture<QNSPSessionInfo>?>(nil)
        let configuration = options.configuration
        do {
            let channel = try QNSPBootstrap.stdio(
                group: group, input: child.stdout, output: child.stdin,
                connection: { QNSPConnection(client: parameters, configuration: configuration) }, isClient: true, options: options
            ) { channel, future in
                handshake.withLockedValue { $0 = future }
                return initializer(channel)
            }.wait()
            guard let future = handshake.withLockedValue({ $0 }) else { throw ChannelError.inappropriateOperationForState }
            return (channel, future)
        } catch {
            throw ToolError("proxy command '\(command)': \(ConnectErrorText.describe(error))")
        }
    }

    /// A handshake that ended because the server said nothing (what a stealth server does to strangers).
    static func isSilence(_ error: QNSPError) -> Bool {
        switch error {
        case .truncatedInput, .connectionClosed, .peerUnresponsive, .handshakeTimeout: return true
        default: return false
        }
    }

    func explain(_ error: QNSPError, entry: KnownHosts.Entry?) -> String {
        switch error {
        case .serverAuthenticationFailed, .rejectedByPeer(code: 2, _), .rejectedByPeer(code: 3, _), .unknownHostKey, .clientHelloUndecryptable:
            let line = entry.map { "\(knownHostsPath):\($0.line)" } ?? knownHostsPath
            return """
                @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
                @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
                @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
                The server at \(host) port \(port) could not prove it holds the host key pinned in
                \(line). Someone could be eavesdropping on you right now (man-in-the-middle),
                or the host key has just been changed. Offending key in \(line).
                Host key verification failed. (\(error))
                """
        case .hostKeyNotTrusted:
            return "Host key verification failed: \(error)"
        default:
            return "\(error)"
        }
    }
}
