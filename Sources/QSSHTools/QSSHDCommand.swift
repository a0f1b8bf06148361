import ArgumentParser
import Crypto
import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSH
import QNSP
import QNSPCrypto
import QNSPNIO
import QSFTP
import QSSHSession

/// `qsshd`: the server. Accepts QNSP connections, authenticates users by their ML-DSA-65
/// keys, and serves SSH-2 sessions (exec, shell) inside the tunnel.
public struct QSSHDCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "qsshd",
        abstract: "Post-quantum SSH server: SSH-2 sessions inside a QNSP tunnel.",
        discussion: """
            qsshd listens for QNSP connections (X-Wing key exchange, ML-DSA-65 user
            keys). A user logs in when the QNSP handshake proves a key listed in the
            authorized_keys file; the SSH-2 session inside the tunnel is then bound to
            that identity (no second authentication).

            Run as root, qsshd logs each user in to their own account (groups, uid,
            HOME, SHELL, home directory) with the keys in that account's
            authorized_keys, which must belong to the user or root and must not be
            writable by others. Run as anyone else, only that account can log in. It
            runs in the foreground (--daemon detaches once it listens; --pid-file,
            --log-file). -f FILE reads options from an sshd_config-style file; the
            command line wins.

            TCP forwarding (qssh -L, -R, -D, -W) is allowed by default, as with sshd;
            --permit-open, --permit-listen and --no-forwarding restrict it. Remote
            forwards bind 127.0.0.1 unless --gateway-ports is given; ports below 1024
            need a root session. Forwarded connections and listeners are made by the
            qsshd process itself (as root when qsshd runs as root), so per-user firewall
            rules (iptables owner match) do not apply to them.

            The sftp subsystem (qscp, OpenSSH's sftp through 'qssh tunnel') runs as the
            user; with --sftp-root its paths cannot reach outside that directory. This
            confines SFTP only: the same user's shell, exec and forwarding are not
            confined, and a concurrent process of that user could race a checked
            directory against a symlink.

            With --bridge HOST:PORT, qsshd authenticates the QNSP tunnel as usual and
            then hands its SSH-2 stream to a classical sshd (e.g. 127.0.0.1:22), which
            logs the user in with their OpenSSH keys and runs the session; the network
            sees only QNSP.

            Example:
              qssh-keygen -t host -f ~/.qssh/host_key -N ''
              qsshd -p 22222 -h ~/.qssh/host_key
            """)

    @Option(name: .customShort("p"), help: "Port to listen on (0 picks a free port, printed on stderr).")
    var port: Int = 22222

    @Option(name: .customShort("l"), help: "Address to listen on.")
    var listen: String = "0.0.0.0"

    @Option(name: .customShort("h"), help: "Host key file (from 'qssh-keygen -t host').")
    var hostKey: String = NSHomeDirectory() + "/.qssh/host_key"

    @Option(name: .long, help: "authorized_keys file; %h is the user's home, %u the user name.")
    var authorizedKeys: String = "%h/.qssh/authorized_keys"

    @Option(name: .long, help: "Ping a silent client after this many seconds (0 = off).")
    var keepalive: Int64 = 30

    @Option(name: .long, help: "Drop a client after this many unanswered keepalive intervals.")
    var keepaliveMax: Int = 3

    @Option(name: .long, help: "Most connections at once; more are closed at once (logged with -v).")
    var maxConnections: Int = 100

    @Option(name: .long, help: "Close a connection after this many seconds without data either way (0 = never).")
    var idleTimeout: Int64 = 0

    @Option(name: .long, help: "Seconds a client has to finish the handshake (login grace time).")
    var loginGraceTime: Int64 = 30

    @Option(name: .long, help: "Append a hash-chained JSON line per connect, auth success/failure, exec and disconnect.")
    var auditLog: String?

    @Option(name: .long, help: "Check the hash chain of an audit log, print the result and exit.")
    var verifyAudit: String?

    @Option(name: .long, help: ArgumentHelp("Where clients may forward (-L, -D, -W): any, none, or host:port,... ('*' is a wildcard).", valueName: "rules"))
    var permitOpen: String = "any"

    @Option(name: .long, help: ArgumentHelp("Ports clients may have this server listen on (-R): any, none, or [host:]port,...", valueName: "rules"))
    var permitListen: String = "any"

    @Flag(name: .long, help: "Let remote forwards (-R) bind the address the client names; otherwise they bind 127.0.0.1.")
    var gatewayPorts = false

    @Flag(name: .long, help: "Refuse all TCP forwarding.")
    var noForwarding = false

    @Option(name: .long, help: ArgumentHelp("Hand each authenticated tunnel's SSH-2 stream to this classical sshd instead of serving sessions here; clients then log in to it with their OpenSSH keys.", valueName: "host:port"))
    var bridge: String?

    @Option(name: .long, help: ArgumentHelp("Confine SFTP sessions to this directory (%h: the user's home, %u: the user name); default: no confinement, start in the home directory.", valueName: "dir"))
    var sftpRoot: String?

    @Flag(name: .long, help: "Refuse the sftp subsystem.")
    var noSFTP = false

    @Flag(name: .long, help: .hidden)
    var internalSFTPServer = false

    @Option(name: .customShort("f"), help: ArgumentHelp("Configuration file (sshd_config style: Port, ListenAddress, HostKey, AuthorizedKeysFile, ClientAliveInterval, ClientAliveCountMax, MaxConnections, LoginGraceTime, IdleTimeout, AuditLog, PermitOpen, PermitListen, GatewayPorts, AllowTcpForwarding, Bridge, SFTPRoot, SFTP, LogLevel, LogFile, PidFile); options on the command line win.", valueName: "file"))
    var config: String?

    @Flag(name: .customShort("D"), help: "Stay in the foreground (the default; see --daemon).")
    var foreground = false

    @Flag(name: .long, help: "Detach once listening: the command returns when the server is ready (or has failed to start).")
    var daemon = false

    @Option(name: .long, help: ArgumentHelp("With --daemon: write the server's process id here (removed on SIGTERM).", valueName: "file"))
    var pidFile: String?

    @Option(name: .long, help: ArgumentHelp("Write the log here (appended, 0600) instead of stderr.", valueName: "file"))
    var logFile: String?

    @Flag(name: .long, help: .hidden)
    var internalDaemonChild = false

    @Flag(name: .shortAndLong, help: "Log every connection (accepted, refused, failed, closed), not only problems.")
    var verbose = false

    public init() {}

    public func run() throws {
        if internalSFTPServer {
            // The sftp subsystem: started by a session (already as the user), speaks SFTP on stdin/stdout.
            let env = ProcessInfo.processInfo.environment
            let root = sftpRoot.map { $0.replacingOccurrences(of: "%h", with: env["HOME"] ?? "/").replacingOccurrences(of: "%u", with: env["USER"] ?? "") }
            throw ExitCode(SFTPServerLoop.run(input: 0, output: 1, root: root))
        }
        if let path = verifyAudit {
            do {
                let (count, chain) = try AuditLog.verify(path: path)
                print("\(path): \(count) records, hash chain intact; last link \(chain)")
                return
            } catch let e as AuditLog.AuditError {
                throw ToolError("\(path): \(e)")
            }
        }
        var forwarding: ForwardingPolicy?
        if !noForwarding {
            do {
                forwarding = ForwardingPolicy(permitOpen: try ForwardingPolicy.parseRules(permitOpen, listen: false),
                                              permitListen: try ForwardingPolicy.parseRules(permitListen, listen: true),
                                              gatewayPorts: gatewayPorts)
            } catch {
                throw ToolError("\(error)")
            }
        }
        let policy = forwarding
        var subsystems: [String: [String]] = [:]
        if !noSFTP {
            let me = ChildProcess.currentExecutable
            subsystems["sftp"] = [me, "--internal-sftp-server"] + (sftpRoot.map { ["--sftp-root", $0] } ?? [])
        }
        let sessionSubsystems = subsystems
        let bridgeTarget = try bridge.map { text in
            do { return try ForwardSpec.parse(hostPort: text) } catch { throw ToolError("--bridge: \(error)") }
        }
        if daemon && !internalDaemonChild { return try detach() }
        let sink = try logFile.map(LineLogHandler.Sink.file) ?? LineLogHandler.Sink(fd: 2)
        var logger = Logger(label: "qsshd") { label in LineLogHandler(label: label, sink: sink, level: .info) }
        logger.logLevel = verbose ? .info : .notice
        let log = logger
        let audit = try auditLog.map { path in
            do { return try AuditLog(path: path) } catch { throw ToolError("\(path): \(error)") }
        }
        guard let account = SessionUser.current() else { throw ToolError("cannot look up the account qsshd runs as") }
        let text = try KeyFileIO.readPrivateKey(path: hostKey)
        guard case .host(let host) = try PrivateKeyFile.decode(text) else { throw ToolError("\(hostKey) is not a host key") }
        // As root, each user logs in to their own account with their own keys; otherwise only
        // the account qsshd runs as can log in.
        let isRoot = getuid() == 0
        let keysPattern = authorizedKeys
        if !isRoot {
            _ = try AuthorizedKeys.load(path: Self.keysPath(keysPattern, for: account))  // fail early on a missing file
        }
        // The account a user name logs in to: any account for a root qsshd, else only its own.
        let sessionUser: @Sendable (String) -> SessionUser? = { name in isRoot ? SessionUser.lookup(name) : (name == account.name ? account : nil) }
        let params = QNSPConnection.ServerParameters(hostKeys: [host]) { user, key in
            guard let target = sessionUser(user) else {
                return .reject(isRoot ? "no account '\(user)'" : "qsshd runs as '\(account.name)' and cannot start sessions for '\(user)'")
            }
            let path = Self.keysPath(keysPattern, for: target)
            if isRoot, let problem = Self.unsafeKeysFile(path, owner: target.uid) {
                return .reject("refusing \(path): \(problem)")
            }
            // Re-read for every login, as sshd does, so edits take effect at once.
            guard let keys = try? AuthorizedKeys.load(path: path), keys.contains(key) else {
                return .reject("key \(key.fingerprint) is not authorized for '\(user)'")
            }
            return .accept
        }
        // The inner SSH host key only names this end of an already authenticated tunnel. It is
        // derived from the host key so that it stays the same across restarts (OpenSSH clients
        // using `qssh tunnel` record it once).
        let sshHostKey = try Self.innerHostKey(host)
        let sessionLog: (@Sendable (String) -> Void)? = verbose ? { @Sendable message in log.info("\(message)") } : nil
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let server: Channel
        do {
            var options = QNSPBootstrap.Options()
            if keepalive > 0 { options.keepalive = .init(interval: .seconds(keepalive), maxMissed: max(1, keepaliveMax)) }
            if loginGraceTime > 0 { options.handshakeTimeout = .seconds(loginGraceTime) }
            if idleTimeout > 0 { options.idleTimeout = .seconds(idleTimeout) }
            let active = NIOLockedValueBox(0)
            let limit = max(1, maxConnections)
            server = try QNSPBootstrap.bindServer(group: group, host: listen, port: port, parameters: params, options: options, admit: { channel in
                let admitted = active.withLockedValue { count in
                    guard count < limit else { return false }
                    count += 1
                    return true
                }
                guard admitted else {
                    sessionLog?("refused \(channel.remoteAddress?.description ?? "?"): \(limit) connections already open (--max-connections)")
                    return "server busy: \(limit) connections already open, try again later"
                }
                return nil
            }) { channel, handshake in
                let peer = channel.remoteAddress?.description ?? "?"
                audit?.record("connect", peer: peer)
                let who = NIOLockedValueBox<(String, String)?>(nil)
                channel.closeFuture.whenComplete { _ in
                    active.withLockedValue { $0 -= 1 }
                    let w = who.withLockedValue { $0 }
                    audit?.record("disconnect", peer: peer, user: w?.0, key: w?.1)
                }
                return channel.eventLoop.makeCompletedFuture {
                    if let (bridgeHost, bridgePort) = bridgeTarget {
                        try SSHBridge.install(on: channel, handshake: handshake, host: bridgeHost, port: bridgePort, log: sessionLog)
                        handshake.whenComplete { result in
                            switch result {
                            case .success(let info):
                                who.withLockedValue { $0 = (info.username, info.userKeyFingerprint) }
                                audit?.record("auth-success", peer: peer, user: info.username, key: info.userKeyFingerprint)
                            case .failure(let error):
                                audit?.record("auth-failure", peer: peer, detail: "\(error)")
                            }
                        }
                        return
                    }
                    // Installed now, not when the handshake ends: bytes must never reach a pipeline without it.
                    let auth = try SSHSessionServer.install(
                        on: channel, sessionUser: sessionUser, switchUser: isRoot, hostKey: sshHostKey, forwarding: policy, subsystems: sessionSubsystems,
                        log: sessionLog.map { log in { @Sendable message in log("\(peer): \(message)") } },
                        onSessionStart: { what in
                            let w = who.withLockedValue { $0 }
                            audit?.record("exec", peer: peer, user: w?.0, key: w?.1, detail: what)
                        })
                    handshake.whenComplete { result in
                        switch result {
                        case .success(let info):
                            auth.setAuthenticatedUser(info.username)
                            who.withLockedValue { $0 = (info.username, info.userKeyFingerprint) }
                            audit?.record("auth-success", peer: peer, user: info.username, key: info.userKeyFingerprint)
                            sessionLog?("accepted \(info.username) (\(info.userKeyFingerprint)) from \(channel.remoteAddress?.description ?? "?")")
                        case .failure(let error):
                            audit?.record("auth-failure", peer: peer, detail: "\(error)")
                            sessionLog?("connection from \(channel.remoteAddress?.description ?? "?") failed: \(error)")
                        }
                    }
                }
            }.wait()
        } catch {
            throw ToolError("cannot listen on \(listen) port \(port): \(ConnectErrorText.describe(error))")
        }
        let listening = "listening on \(listen):\(server.localAddress?.port ?? port) (host key \(host.publicKey.fingerprint))"
        Terminal.warn("qsshd: " + listening)  // the startup report, on stderr (a --daemon parent waits for it)
        if logFile != nil { log.notice("\(listening)") }
        let termination = internalDaemonChild ? Self.becomeDaemon(sink: sink, logFile: logFile != nil, pidFile: pidFile) : nil
        try server.closeFuture.wait()
        termination?.cancel()
    }

    /// --daemon: runs this command again in a session of its own (without --daemon), waits for its
    /// "listening on" report, writes the pid file and returns; the server's startup errors are
    /// shown and make this fail.
    func detach() throws {
        let me = ChildProcess.currentExecutable
        let args = CommandLine.arguments.dropFirst().filter { $0 != "--daemon" } + ["--internal-daemon-child"]
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn([me] + args, environment: ProcessInfo.processInfo.environment, directory: nil)
        } catch {
            throw ToolError("cannot start the server process: \(error)")
        }
        close(child.stdin)
        let text = BlockingIO.readText(child.stderr) { $0.contains("listening on") && $0.hasSuffix("\n") }
        close(child.stderr); close(child.stdout)
        guard text.contains("listening on") else {
            FileHandle.standardError.write(Data(text.utf8))
            _ = child.waitForExit()
            throw ExitCode(1)
        }
        if let pidFile {
            do { try "\(child.pid)\n".write(toFile: pidFile, atomically: true, encoding: .utf8) } catch {
                kill(child.pid, SIGTERM)
                throw ToolError("cannot write \(pidFile): \(error.localizedDescription)")
            }
        }
        FileHandle.standardError.write(Data((text.trimmingCharacters(in: .newlines) + " (pid \(child.pid))\n").utf8))
    }

    /// In the detached server: stdin/stdout/stderr leave the parent's pipes (stderr goes to the
    /// log file when there is one); SIGTERM removes the pid file and exits.
    static func becomeDaemon(sink: LineLogHandler.Sink, logFile: Bool, pidFile: String?) -> DispatchSourceSignal {
        signal(SIGPIPE, SIG_IGN)
        let null = open("/dev/null", O_RDWR)
        if null >= 0 {
            dup2(null, 0)
            dup2(null, 1)
            if !logFile { dup2(null, 2); sink.redirect(to: 2) }
            if null > 2 { close(null) }
        }
        signal(SIGTERM, SIG_IGN)
        let term = DispatchSource.makeSignalSource(signal: SIGTERM)
        term.setEventHandler {
            if let pidFile { unlink(pidFile) }
            #if canImport(Glibc)
            Glibc.exit(0)
            #else
            Darwin.exit(0)
            #endif
        }
        term.resume()
        return term
    }

    /// The inner SSH-2 ed25519 host key, derived from the QNSP host key's signing seed.
    static func innerHostKey(_ host: HostKeyPair) throws -> NIOSSHPrivateKey {
        let prk = KeyDerivation.extract(salt: Array("qsshd inner ssh-ed25519 host key v1".utf8), inputKeyMaterial: host.signingKey.seed)
        let seed = KeyDerivation.expand(pseudoRandomKey: prk, info: [], length: 32)
        return NIOSSHPrivateKey(ed25519Key: try Curve25519.Signing.PrivateKey(rawRepresentation: seed))
    }

    /// Expands %h and %u in an authorized_keys path.
    static func keysPath(_ pattern: String, for user: SessionUser) -> String {
        pattern.replacingOccurrences(of: "%h", with: user.home).replacingOccurrences(of: "%u", with: user.name)
    }

    /// Why a keys file must not be trusted (sshd's StrictModes), or nil: the file and its directory
    /// must belong to the user or root and not be writable by group or others.
    static func unsafeKeysFile(_ path: String, owner: UInt32) -> String? {
        for p in [path, (path as NSString).deletingLastPathComponent] {
            var st = stat()
            guard stat(p, &st) == 0 else { return nil }  // missing: the load reports it
            if st.st_uid != owner && st.st_uid != 0 { return "\(p) belongs to uid \(st.st_uid)" }
            if st.st_mode & 0o022 != 0 { return "\(p) is writable by group or others" }
        }
        return nil
    }
}
