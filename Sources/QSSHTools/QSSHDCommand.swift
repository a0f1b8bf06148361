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
import QNSPQUIC
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

            Agent forwarding (qssh -A) is allowed by default, as with sshd: a session whose
            client asks for it gets a Unix socket of its own, agent.PID (mode 0600) in a
            new directory /tmp/qssh-XXXXXX (mode 0700), both owned by the user, named
            by QSSH_AUTH_SOCK in the session's environment; each connection to it is
            relayed to the client's qssh-agent (docs/protocol.md §7.9). Socket and
            directory are removed when the session's process ends (and on SIGTERM).
            Whoever can use the socket (the user, root) can have the client's agent sign
            while the session lasts. --no-agent-forwarding refuses it for everyone, a user
            certificate's no-agent-forwarding for that login; the session itself still
            runs. With --bridge, qssh -A forwards nothing (the classical sshd does not
            know qssh's request); OpenSSH's ssh -A through 'qssh tunnel' forwards its
            ssh-agent to that sshd under the sshd's own settings.

            The sftp subsystem (qscp, OpenSSH's sftp through 'qssh tunnel') runs as the
            user; with --sftp-root its paths cannot reach outside that directory. This
            confines SFTP only: the same user's shell, exec and forwarding are not
            confined, and a concurrent process of that user could race a checked
            directory against a symlink.

            With --password-auth (off by default), an account may also log in with its
            system password, checked by PAM (the auth and account stacks of the service
            named by --pam-service, default /etc/pam.d/qsshd; expired and locked
            accounts are refused) and then its session stack. The password is asked for
            only inside a QNSP tunnel whose handshake has authenticated this server, and
            only when the handshake did not bring a key or certificate this server
            authorizes: keys stay the default and are tried first. Three passwords per
            connection; failures are logged (and to --audit-log), and from the fourth
            failure in a row from one address each answer is delayed (1 s, doubling to
            30 s). The session stack runs in a helper process per login, so modules
            such as pam_limits act on it, not on the server; the PAM environment and
            the limits pam_limits sets are given to the session's processes. Root (uid 0)
            is refused a password login (and the refusal logged) unless
            --permit-root-password is given.

            With --bridge HOST:PORT, qsshd authenticates the QNSP tunnel as usual and
            then hands its SSH-2 stream to a classical sshd (e.g. 127.0.0.1:22), which
            logs the user in with their OpenSSH keys and runs the session; the network
            sees only QNSP. The QUIC endpoint then also offers ALPN ssh: each stream of
            such a connection is plain SSH-2 (no QNSP) handed straight to that sshd, whose
            own host key authentication is then all that protects it (docs/protocol.md §8).

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

    @Option(name: .long, help: ArgumentHelp(
        "Host certificate (from 'qssh-keygen -s CA -h'), sent to first-contact clients that trust its CA through a known_hosts @cert-authority line. Default: HOSTKEY-cert.pub beside the host key, when it exists.",
        valueName: "file"))
    var hostCertificate: String?

    @Option(name: .long, help: "authorized_keys file; %h is the user's home, %u the user name.")
    var authorizedKeys: String = "%h/.qssh/authorized_keys"

    @Option(name: .long, help: "Accept user certificates signed by the CA keys in this file (principals must include the user).")
    var trustedUserCaKeys: String?

    @Option(name: .long, help: "With certificates: the principals each user accepts, one per line (%h home, %u user).")
    var authorizedPrincipalsFile: String?

    @Option(name: .long, help: "Revoked keys, certificate serials ('serial N[-M]') and key ids ('id ID'); read for every login.")
    var revokedKeys: String?

    @Flag(name: .long, help: ArgumentHelp(
        "Allow password login through PAM when a client's key or certificate is not authorized (off by default; only after the QNSP handshake has authenticated this server; keys are tried first). Config: PasswordAuthentication yes."))
    var passwordAuth = false

    @Option(name: .long, help: ArgumentHelp(
        "PAM service for --password-auth: /etc/pam.d/NAME supplies the auth, account and session stacks. Config: PAMServiceName.",
        valueName: "name"))
    var pamService: String = "qsshd"

    @Flag(name: .long, help: ArgumentHelp(
        "With --password-auth: let root (uid 0) log in with a password too (off by default: root's password logins are refused and logged). Config: PermitRootLogin yes."))
    var permitRootPassword = false

    @Flag(name: .long, help: ArgumentHelp(
        "Refuse every login to root (uid 0): keys, certificates and passwords. Config: PermitRootLogin no (prohibit-password, the default, lets root log in with keys only)."))
    var noRootLogin = false

    @Option(name: .long, help: "Ping a silent client after this many seconds (0 = off).")
    var keepalive: Int64 = 30

    @Option(name: .long, help: "Drop a client after this many unanswered keepalive intervals.")
    var keepaliveMax: Int = 3

    @Option(name: .long, help: "Most logged-in sessions at once; beyond it new connections get 'server busy' at once (logged with -v).")
    var maxConnections: Int = 100

    @Option(name: .long, help: ArgumentHelp(
        "Unauthenticated connections (still in the handshake): beyond 'start', new ones are refused with probability 'rate'% rising to 100% at 'full' (sshd's MaxStartups; N alone means N:100:N). They never count against --max-connections.",
        valueName: "start:rate:full"))
    var maxStartups: String = "10:30:100"

    @Option(name: .long, help: ArgumentHelp(
        "Most unauthenticated connections from one address ('none': no limit). Keep it below the 'start' of --max-startups, so that one address cannot push everybody into random early drop.",
        valueName: "n|none"))
    var perSourceMaxStartups: String = "4"

    @Option(name: .long, help: ArgumentHelp(
        "When a client must first answer a stateless cookie round (a Retry) before any key exchange work: 'auto' (under load: many unauthenticated connections or more than 50 hellos a second), 'always' or 'never'. Over QUIC the same for its Retry (address validation; 'auto': more than 50 new connections a second).",
        valueName: "mode"))
    var handshakeCookies: QNSPHandshakeGuard.CookieMode = .auto

    @Option(name: .long, help: "Close a connection after this many seconds without data either way (0 = never).")
    var idleTimeout: Int64 = 0

    @Option(name: .long, help: "Seconds a client has to finish the handshake (login grace time).")
    var loginGraceTime: Int64 = 30

    @Option(name: .long, help: ArgumentHelp(
        "Append a JSON line per connect, auth success/failure, exec and disconnect, chained with a keyed MAC (--audit-key) and signed with the host key every 64 lines and on exit (docs/security.md).",
        valueName: "file"))
    var auditLog: String?

    @Option(name: .long, help: ArgumentHelp(
        "Check an audit log (its keyed chain with --audit-key, its checkpoint signatures with the host key of -h, its end against --audit-head), print what was found and exit: 0 when intact.",
        valueName: "file"))
    var verifyAudit: String?

    @Option(name: .long, help: ArgumentHelp("The audit log's HMAC key (created 0600 if missing; default: LOG.key). Keep it readable only by qsshd's account.", valueName: "file"))
    var auditKey: String?

    @Option(name: .long, help: ArgumentHelp("Where the audit log's last link is kept, ideally on other storage (default: LOG.head).", valueName: "file"))
    var auditHead: String?

    @Option(name: .long, help: ArgumentHelp("Rotate the audit log beyond this many bytes (LOG.1 … LOG.5; 0: never).", valueName: "bytes"))
    var auditMaxSize: Int = 16 << 20

    @Option(name: .long, help: ArgumentHelp("Where clients may forward (-L, -D, -W): any, none, or host:port,... ('*' is a wildcard).", valueName: "rules"))
    var permitOpen: String = "any"

    @Option(name: .long, help: ArgumentHelp("Ports clients may have this server listen on (-R): any, none, or [host:]port,...", valueName: "rules"))
    var permitListen: String = "any"

    @Flag(name: .long, help: "Let remote forwards (-R) bind the address the client names; otherwise they bind 127.0.0.1.")
    var gatewayPorts = false

    @Flag(inversion: .prefixedNo, help: "Also serve over QUIC on UDP with the same port number (ALPN qssh/1; the QUIC certificate is kept next to the host key as HOSTKEY.quic-cert.pem / .quic-key.pem).")
    var quic = true

    @Flag(name: .long, help: "Refuse all TCP forwarding.")
    var noForwarding = false

    @Flag(name: .long, help: "Refuse agent forwarding (qssh -A): sessions still run, without a forwarded socket or QSSH_AUTH_SOCK.")
    var noAgentForwarding = false

    @Option(name: .long, help: ArgumentHelp("Hand each authenticated tunnel's SSH-2 stream to this classical sshd instead of serving sessions here; clients then log in to it with their OpenSSH keys.", valueName: "host:port"))
    var bridge: String?

    @Option(name: .long, help: ArgumentHelp("Confine SFTP sessions to this directory (%h: the user's home, %u: the user name); default: no confinement, start in the home directory.", valueName: "dir"))
    var sftpRoot: String?

    @Flag(name: .long, help: "Stealth mode (docs/protocol.md §9): answer only clients that hold this host key's stealth line ('qssh-keygen --stealth-line -f HOSTKEY'); everyone else gets silence.")
    var stealth = false

    @Flag(name: .long, help: "With --stealth: expect clients' first flights to start with a printable prefix (clients use --mimic; docs/protocol.md §9.8).")
    var mimic = false

    @Option(name: .long, help: "Cover traffic towards clients: off, random or constant (docs/protocol.md §9.6).")
    var padding: String = "off"

    @Flag(name: .long, help: "Refuse the sftp subsystem.")
    var noSFTP = false

    @Flag(name: .long, help: .hidden)
    var internalSFTPServer = false

    @Option(name: .long, help: .hidden)
    var internalPamSession: String?

    @Option(name: .long, help: .hidden)
    var internalPamUser: String?

    @Option(name: .long, help: .hidden)
    var internalPamRhost: String?

    @Option(name: .customShort("f"), help: ArgumentHelp("Configuration file (sshd_config style: Port, ListenAddress, HostKey, AuthorizedKeysFile, ClientAliveInterval, ClientAliveCountMax, MaxConnections, LoginGraceTime, IdleTimeout, AuditLog, PermitOpen, PermitListen, GatewayPorts, AllowTcpForwarding, AllowAgentForwarding, Bridge, SFTPRoot, SFTP, LogLevel, LogFile, PidFile, Stealth, Mimic, Padding, PasswordAuthentication, PAMServiceName, PermitRootLogin, HostCertificate, TrustedUserCAKeys, AuthorizedPrincipalsFile, RevokedKeys); options on the command line win.", valueName: "file"))
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

    public func validate() throws {
        if noRootLogin && permitRootPassword {
            throw ValidationError("--no-root-login and --permit-root-password contradict each other (PermitRootLogin takes one value)")
        }
    }

    public func run() throws {
        if internalSFTPServer {
            // The sftp subsystem: started by a session (already as the user), speaks SFTP on stdin/stdout.
            let env = ProcessInfo.processInfo.environment
            let root = sftpRoot.map { $0.replacingOccurrences(of: "%h", with: env["HOME"] ?? "/").replacingOccurrences(of: "%u", with: env["USER"] ?? "") }
            let order = SFTPServer.SymlinkArgumentOrder.of(clientVersion: env[ExecSessionHandler.peerVersionVariable])
            throw ExitCode(SFTPServerLoop.run(input: 0, output: 1, root: root, symlinkOrder: order))
        }
        if let service = internalPamSession, let user = internalPamUser {
            // The PAM session helper of one password login (PAMSessionHelper).
            throw ExitCode(PAMSessionHelper.run(service: service, user: user, remoteHost: internalPamRhost))
        }
        if let path = verifyAudit { return try verifyAuditLog(path) }
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
        let agentForwarding = !noAgentForwarding
        var subsystems: [String: [String]] = [:]
        if !noSFTP {
            let me = ChildProcess.currentExecutable
            subsystems["sftp"] = [me, "--internal-sftp-server"] + (sftpRoot.map { ["--sftp-root", $0] } ?? [])
        }
        let sessionSubsystems = subsystems
        let bridgeTarget = try bridge.map { text in
            do { return try ForwardSpec.parse(hostPort: text) } catch { throw ToolError("--bridge: \(error)") }
        }
        if passwordAuth {
            if bridgeTarget != nil {
                throw ToolError("--password-auth cannot be combined with --bridge (the sshd behind the bridge asks for passwords itself)")
            }
            guard PasswordLoginService.isValidServiceName(pamService) else {
                throw ToolError("--pam-service: '\(PrintableText.escaped(pamService))' is not a PAM service name (a file name in /etc/pam.d)")
            }
        }
        if daemon && !internalDaemonChild { return try detach() }
        let sink = try logFile.map(LineLogHandler.Sink.file) ?? LineLogHandler.Sink(fd: 2)
        var logger = Logger(label: "qsshd") { label in LineLogHandler(label: label, sink: sink, level: .info) }
        logger.logLevel = verbose ? .info : .notice
        let log = logger
        guard let account = SessionUser.current() else { throw ToolError("cannot look up the account qsshd runs as") }
        let text = try KeyFileIO.readPrivateKey(path: hostKey)
        guard case .host(let host) = try PrivateKeyFile.decode(text) else { throw ToolError("\(hostKey) is not a host key") }
        let audit = try auditLog.map { path in
            var settings = AuditLog.Options()
            settings.keyPath = auditKey
            settings.headPath = auditHead
            settings.maxSize = auditMaxSize
            let opened: AuditLog
            do { opened = try AuditLog(path: path, signer: host, options: settings) } catch { throw ToolError("\(path): \(error)") }
            if let problem = opened.startupProblem {
                log.warning("audit log \(path): \(problem); a new segment was started")
            }
            return opened
        }
        guard let startups = StartupLimits(parsing: maxStartups) else {
            throw ToolError("--max-startups: expected N or start:rate:full (e.g. 10:30:100), not '\(maxStartups)'")
        }
        let perSource: Int?
        switch perSourceMaxStartups.lowercased() {
        case "none": perSource = nil
        default:
            guard let n = Int(perSourceMaxStartups), n > 0 else {
                throw ToolError("--per-source-max-startups: expected a positive number or 'none', not '\(perSourceMaxStartups)'")
            }
            perSource = n
        }
        // As root, each user logs in to their own account with their own keys; otherwise only
        // the account qsshd runs as can log in.
        let isRoot = getuid() == 0
        let authorizer = AccountAuthorizer(
            isRoot: isRoot, serverAccount: account, keysPattern: authorizedKeys, terminalGroup: SessionUser.groupID("tty"),
            denyRoot: noRootLogin)
        if !isRoot {
            _ = try AuthorizedKeys.load(path: AccountAuthorizer.keysPath(authorizedKeys, for: account))  // fail early on a missing file
        }
        let admission = ConnectionAdmission(limits: .init(maxSessions: maxConnections, startups: startups, perSource: perSource))
        var guardPolicy = QNSPHandshakeGuard.Policy()
        guardPolicy.cookies = handshakeCookies
        let handshakeGuard = QNSPHandshakeGuard(policy: guardPolicy, underLoad: { admission.unauthenticated >= max(1, startups.start / 2) })
        // The inner SSH host key only names this end of an already authenticated tunnel. It is
        // derived from the host key so that it stays the same across restarts (OpenSSH clients
        // using `qssh tunnel` record it once).
        let sshHostKey = try Self.innerHostKey(host)
        let sessionLog: (@Sendable (String) -> Void)? = verbose ? { @Sendable message in log.info("\(message)") } : nil
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        // Password database and keys files are read here, never on an event loop.
        let lookups = NIOThreadPool(numberOfThreads: 4)
        lookups.start()
        var parameters = QNSPConnection.ServerParameters(hostKeys: [host], handshakeGuard: handshakeGuard) { _, _ in .reject("no policy") }
        parameters.hostCertificate = try Self.loadHostCertificate(explicit: hostCertificate, hostKeyPath: hostKey, host: host, log: log)
        let baseParameters = parameters
        let trustedCAs = try trustedUserCaKeys.map { try TrustedCAKeys.load(path: $0) } ?? []
        let revokedKeys = self.revokedKeys
        let principalsPattern = authorizedPrincipalsFile
        // PAM gets a thread of its own (its calls are serialized anyway), so that slow or many
        // password checks never hold up key logins on `lookups`.
        let passwords = passwordAuth
            ? PasswordLoginService(service: pamService, authorizer: authorizer, pool: Self.pamThread(), throttle: LoginFailureThrottle(), audit: audit, log: log,
                                   permitRoot: permitRootPassword)
            : nil
        let graceTime = loginGraceTime
        if let revokedKeys { _ = try RevokedKeys.load(path: revokedKeys) }  // fail early on a bad file
        let server: Channel
        var quicPort: Int?
        do {
            var options = QNSPBootstrap.Options()
            if keepalive > 0 { options.keepalive = .init(interval: .seconds(keepalive), maxMissed: max(1, keepaliveMax)) }
            if loginGraceTime > 0 { options.handshakeTimeout = .seconds(loginGraceTime) }
            if idleTimeout > 0 { options.idleTimeout = .seconds(idleTimeout) }
            options.authorization = .threadPool(lookups, timeout: .seconds(10))
            if mimic && !stealth { throw ToolError("--mimic needs --stealth") }
            if stealth {
                var stealthOptions = StealthArgument.serverOptions(host: host, mimic: mimic)
                // A probe must meet the random deadline, never the fixed login grace time.
                if loginGraceTime > 0 {
                    let grace = loginGraceTime * 1000 - 1
                    let upper = min(stealthOptions.probePolicy.deadlineMilliseconds.upperBound, max(1, grace))
                    let lower = min(stealthOptions.probePolicy.deadlineMilliseconds.lowerBound, upper / 4)
                    stealthOptions.probePolicy.deadlineMilliseconds = lower...upper
                }
                options.stealth = stealthOptions
            }
            options.padding = try StealthArgument.padding(padding)
            let tickets = ConnectionTickets()
            let parametersFor: @Sendable (Channel) -> QNSPConnection.ServerParameters = { channel in
                // One policy per connection: it records the account it looked up for the session,
                // and counts the login against the session limit.
                var parameters = baseParameters
                let connection = ObjectIdentifier(channel)
                let peer = tickets.peerAddress(of: channel)?.ipAddress ?? "?"  // not the channel: the policy lives in its pipeline
                // A looked-up account still needs a session slot; the refusal is logged either way.
                @Sendable func conclude(
                    _ result: Result<SessionUser, AuthorizationRefusal>, user: String, accepted: () -> Void = {}
                ) -> QNSPConnection.AuthorizationDecision {
                    switch result {
                    case .failure(let refusal):
                        log.notice("refused \(user) from \(peer): \(refusal.description)")
                        return .reject(refusal.description)
                    case .success(let resolved):
                        guard let ticket = tickets.ticket(for: connection), admission.authenticated(ticket) else {
                            log.notice("refused \(user) from \(peer): \(admission.limits.maxSessions) sessions already open")
                            return .reject("sessions full")
                        }
                        accepted()
                        tickets.setAccount(resolved, for: connection)
                        return .accept
                    }
                }
                parameters.authorize = { user, key in
                    if let revokedKeys {
                        guard let revoked = try? RevokedKeys.load(path: revokedKeys) else {
                            log.notice("refused \(user) from \(peer): cannot read \(revokedKeys)")
                            return .reject("revoked keys unreadable")
                        }
                        if revoked.isRevoked(key) {
                            log.notice("refused \(user) from \(peer): key \(key.fingerprint) is revoked in \(revokedKeys)")
                            return .reject("revoked key")
                        }
                    }
                    let result = authorizer.authorize(user: user, key: key)
                    if passwords != nil, case .failure(let refusal) = result {
                        // Password login (docs/protocol.md §7.10): the tunnel is established, the
                        // inner SSH login then asks for a password for this user name.
                        log.notice("key \(key.fingerprint) of \(user) from \(peer) not accepted (\(refusal.description)); password login offered")
                        tickets.setPasswordUser(user, for: connection)
                        return .accept
                    }
                    return conclude(result, user: user)
                }
                parameters.authorizeCertificate = { user, key, certificate in
                    let now = UInt64(Date().timeIntervalSince1970)
                    let result = authorizer.authorize(user: user, key: key, certificate: certificate, trustedCAs: trustedCAs, peer: peer, now: now,
                                                      revokedKeysPath: revokedKeys, principalsPattern: principalsPattern)
                    return conclude(result, user: user) {
                        log.notice("accepted \(user) from \(peer) with certificate \"\(PrintableText.escapedKeepingLines(certificate.keyID))\" serial \(certificate.serial) for key \(key.fingerprint)")
                    }
                }
                return parameters
            }
            // `source`: the peer's real address when the channel's own is not it (a QUIC stream).
            let admitFrom: @Sendable (Channel, SocketAddress?) -> String? = { channel, source in
                let remote = source ?? channel.remoteAddress
                switch admission.admit(source: QNSPBootstrap.addressBytes(remote), channel: channel) {
                case .admit(let ticket, let evicted):
                    tickets.register(ticket, for: ObjectIdentifier(channel))
                    if let evicted { log.notice("closed a silent unauthenticated connection from \(evicted) to make room") }
                    return nil
                case .refuse(let reason, let why):
                    sessionLog?("refused \(remote?.description ?? "?"): \(why)")
                    audit?.recordUnauthenticated("refused", peer: remote?.ipAddress, detail: why)
                    return reason
                }
            }
            let admit: @Sendable (Channel) -> String? = { admitFrom($0, nil) }
            let childInitializer: @Sendable (Channel, EventLoopFuture<QNSPSessionInfo>) -> EventLoopFuture<Void> = { channel, handshake in
                let peer = tickets.peerAddress(of: channel)?.description ?? "?"
                let connection = ObjectIdentifier(channel)
                audit?.recordUnauthenticated("connect", peer: peer)
                let who = NIOLockedValueBox<(String, String)?>(nil)
                if let ticket = tickets.ticket(for: connection) {
                    try? channel.pipeline.syncOperations.addHandler(FirstByteObserver { admission.heard(ticket) }, position: .first)
                }
                channel.closeFuture.whenComplete { _ in
                    if let ticket = tickets.remove(connection) { admission.closed(ticket) }
                    if let w = who.withLockedValue({ $0 }) {
                        audit?.record("disconnect", peer: peer, user: w.0, key: w.1)
                    } else {
                        audit?.recordUnauthenticated("disconnect", peer: peer)
                    }
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
                                audit?.recordUnauthenticated("auth-failure", peer: peer, detail: "\(error)")
                            }
                        }
                        return
                    }
                    // Installed now, not when the handshake ends: bytes must never reach a pipeline without it.
                    let auth = try SSHSessionServer.install(
                        on: channel, switchUser: isRoot, hostKey: sshHostKey, forwarding: policy, subsystems: sessionSubsystems,
                        agentForwarding: agentForwarding,
                        log: sessionLog.map { log in { @Sendable message in log("\(peer): \(message)") } },
                        onSessionStart: { what in
                            let w = who.withLockedValue { $0 }
                            audit?.record("exec", peer: peer, user: w?.0, key: w?.1, detail: what)
                        })
                    handshake.whenComplete { result in
                        switch result {
                        case .success(let info):
                            if let passwords, tickets.account(for: connection) == nil, let user = tickets.passwordUser(for: connection) {
                                audit?.recordUnauthenticated(
                                    "auth-partial", peer: peer, user: user, detail: "key \(info.userKeyFingerprint) not authorized; password login offered")
                                auth.allowPassword(passwords.login(user: user, channel: channel, remoteAddress: tickets.peerAddress(of: channel), takeSlot: {
                                    guard let ticket = tickets.ticket(for: connection) else { return false }
                                    return admission.authenticated(ticket)
                                }, accepted: { account in
                                    tickets.setAccount(account, for: connection)
                                    who.withLockedValue { $0 = (account.name, "password") }
                                }))
                                if graceTime > 0 {
                                    // The password must come within the login grace time too.
                                    channel.eventLoop.scheduleTask(in: .seconds(graceTime)) {
                                        guard auth.authenticatedAccount == nil, channel.isActive else { return }
                                        log.notice("closing the connection of \(user) from \(peer): no password login within \(graceTime) s")
                                        channel.close(promise: nil)
                                    }
                                }
                                return
                            }
                            if let resolved = tickets.account(for: connection) { auth.setAuthenticated(resolved) }
                            who.withLockedValue { $0 = (info.username, info.userKeyFingerprint) }
                            audit?.record("auth-success", peer: peer, user: info.username, key: info.userKeyFingerprint)
                            sessionLog?("accepted \(info.username) (\(info.userKeyFingerprint)) from \(peer)")
                        case .failure(let error):
                            audit?.recordUnauthenticated("auth-failure", peer: peer, detail: "\(error)")
                            sessionLog?("connection from \(peer) failed: \(error)")
                        }
                    }
                }
            }
            server = try QNSPBootstrap.bindServer(
                group: group, host: listen, port: port, parametersFor: parametersFor, options: options, admit: admit,
                childInitializer: childInitializer
            ).wait()
            // Stealth mode stays TCP only: a QUIC endpoint answers anyone's Initial, which is the
            // very fingerprint stealth mode hides (docs/protocol.md §9).
            if quic && !stealth {
                // The same sessions over QUIC (ALPN qssh/1), on UDP with the TCP port's number.
                let streamOptions = options
                // With --bridge, ALPN ssh too: plain SSH-2 on the stream, straight to the bridged sshd
                // (docs/protocol.md §8: no QNSP there, sshd's own host key authentication protects it).
                var plainSSH: QUICServiceRegistry.StreamInitializer?
                if let (bridgeHost, bridgePort) = bridgeTarget {
                    // Admitted like any connection (keyed on the QUIC peer's address), so one peer's
                    // streams cannot use up the bridged sshd's MaxStartups. qsshd cannot see sshd's
                    // authentication: a stream counts as unauthenticated until it has lived the login
                    // grace time (when sshd would have dropped it unauthenticated), then as a session.
                    let promoteAfter = graceTime > 0 ? graceTime : 120
                    plainSSH = { channel, info in
                        let peer = "\(info.remoteAddress)"
                        if let why = admitFrom(channel, info.remoteAddress) {
                            sessionLog?("refused plain SSH stream (QUIC ALPN ssh) from \(peer): \(why)")
                            // Failing the initializer resets the stream (closing the channel here,
                            // before it is registered, trips NIO's registration assertions).
                            return channel.eventLoop.makeFailedFuture(ToolError(why))
                        }
                        let connection = ObjectIdentifier(channel)
                        audit?.recordUnauthenticated("connect", peer: peer, detail: "QUIC ALPN ssh (bridged)")
                        if let ticket = tickets.ticket(for: connection) {
                            try? channel.pipeline.syncOperations.addHandler(FirstByteObserver { admission.heard(ticket) }, position: .first)
                            let promotion = channel.eventLoop.scheduleTask(in: .seconds(promoteAfter)) {
                                guard channel.isActive, !admission.authenticated(ticket) else { return }
                                log.notice("closing plain SSH stream from \(peer): \(admission.limits.maxSessions) sessions already open")
                                channel.close(promise: nil)
                            }
                            channel.closeFuture.whenComplete { _ in promotion.cancel() }
                        }
                        channel.closeFuture.whenComplete { _ in
                            if let ticket = tickets.remove(connection) { admission.closed(ticket) }
                            audit?.recordUnauthenticated("disconnect", peer: peer, detail: "QUIC ALPN ssh (bridged)")
                        }
                        return channel.eventLoop.makeCompletedFuture {
                            try SSHBridge.installPlain(on: channel, host: bridgeHost, port: bridgePort, peer: peer, log: sessionLog)
                        }
                    }
                }
                quicPort = startQUIC(group: group, port: server.localAddress?.port ?? port, log: log, plainSSH: plainSSH) { channel, info in
                    if let why = admitFrom(channel, info.remoteAddress) {
                        sessionLog?("refused QUIC stream from \(info.remoteAddress): \(why)")
                        return channel.eventLoop.makeFailedFuture(ToolError(why))
                    }
                    // The client's address as QUIC saw it (the stream channel's remote address too).
                    let connection = ObjectIdentifier(channel)
                    tickets.setPeerAddress(info.remoteAddress, for: connection)
                    channel.closeFuture.whenComplete { _ in tickets.forgetPeerAddress(for: connection) }
                    return QNSPQUICBootstrap.service(parametersFor: { ch, _ in parametersFor(ch) }, options: streamOptions,
                                                     childInitializer: childInitializer)(channel, info)
                }
            }
        } catch {
            throw ToolError("cannot listen on \(listen) port \(port): \(ConnectErrorText.describe(error))")
        }
        let listening = "listening on \(listen):\(server.localAddress?.port ?? port) (host key \(host.publicKey.fingerprint)\(stealth ? ", stealth mode" : ""))"
        Terminal.warn("qsshd: " + listening)  // the startup report, on stderr (a --daemon parent waits for it)
        if let quicPort {
            let alpns = [QUICServiceRegistry.qssh] + (bridgeTarget != nil ? [QUICServiceRegistry.ssh] : [])
            Terminal.warn("qsshd: QUIC on UDP \(listen):\(quicPort) (ALPN \(alpns.joined(separator: ", ")))")
        }
        if logFile != nil { log.notice("\(listening)") }
        if internalDaemonChild { Self.becomeDaemon(sink: sink, logFile: logFile != nil) }
        // SIGTERM ends the server in order: a last signed audit checkpoint, the pid file removed.
        let termination = Self.onTermination(pidFile: internalDaemonChild ? pidFile : nil) {
            AgentSocketListener.stopAll()
            audit?.flush(checkpoint: true)
        }
        try server.closeFuture.wait()
        termination.cancel()
        audit?.flush(checkpoint: true)
    }

    /// How many ALPN ssh streams one QUIC connection may have open at once (each is a TCP
    /// connection to the bridged sshd).
    static let maxPlainSSHStreamsPerConnection = 8

    /// Binds the QUIC endpoint (its certificate kept next to the host key). A failure is reported
    /// and the server goes on over TCP alone. Returns the UDP port, or nil. `plainSSH` (only with
    /// --bridge) serves ALPN ssh.
    func startQUIC(
        group: EventLoopGroup, port: Int, log: Logger, plainSSH: QUICServiceRegistry.StreamInitializer? = nil,
        service: @escaping QUICServiceRegistry.StreamInitializer
    ) -> Int? {
        do {
            let credentials = try QUICCertificateStore.loadOrCreate(hostKeyPath: hostKey)
            var services = QUICServiceRegistry()
            services.register(QUICServiceRegistry.qssh, service)
            if let plainSSH {
                services.register(QUICServiceRegistry.ssh, maxStreamsPerConnection: Self.maxPlainSSHStreamsPerConnection, plainSSH)
            }
            // QUIC's address validation follows --handshake-cookies (docs/protocol.md §8.4): a Retry
            // round trip always, never, or (auto) only while new connections come faster than QNSP's
            // own threshold for cookies.
            var configuration = QUICEndpoint.Configuration()
            switch handshakeCookies {
            case .always: configuration.retry = .always
            case .never: configuration.retry = .never
            case .auto: configuration.retry = .underLoad(newConnectionsPerSecond: QNSPHandshakeGuard.Policy().autoCookieHellosPerSecond)
            }
            let endpoint = try QUICEndpoint.bind(
                group: group, host: listen, port: port, server: credentials, services: services, configuration: configuration
            ).wait()
            return endpoint.localAddress?.port
        } catch {
            Terminal.warn("qsshd: QUIC not started (UDP port \(port)): \(error); serving over TCP only")
            log.warning("QUIC not started (UDP port \(port)): \(error)")
            return nil
        }
    }

    /// --verify-audit: prints each segment and every problem; fails unless the log is intact.
    func verifyAuditLog(_ path: String) throws {
        let hostPublic: HostPublicKey? = {
            if let line = try? String(contentsOfFile: hostKey + ".pub", encoding: .utf8),
               case .host(let key, _)? = try? PublicKeyLine(parsing: line.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return key
            }
            if let text = try? KeyFileIO.readPrivateKey(path: hostKey), case .host(let pair)? = try? PrivateKeyFile.decode(text) {
                return pair.publicKey
            }
            return nil
        }()
        let report = AuditLog.verify(path: path, keyPath: auditKey, headPath: auditHead, hostKey: hostPublic)
        for segment in report.segments {
            print("\(path): segment \(segment.segment) from line \(segment.firstLine): \(segment.records) records, \(segment.checkpoints) signed checkpoints, \(segment.intact ? "intact" : "BROKEN"); last link \(segment.lastSeq) \(segment.lastChain)")
        }
        for note in report.notes { Terminal.warn("qsshd: \(path): note: \(note)") }
        guard report.isIntact else {
            throw ToolError("\(path): " + report.problems.joined(separator: "; "))
        }
        print("\(path): \(report.segments.map(\.records).reduce(0, +)) records, hash chain intact")
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
    /// log file when there is one).
    static func becomeDaemon(sink: LineLogHandler.Sink, logFile: Bool) {
        signal(SIGPIPE, SIG_IGN)
        let null = open("/dev/null", O_RDWR)
        if null >= 0 {
            dup2(null, 0)
            dup2(null, 1)
            if !logFile { dup2(null, 2); sink.redirect(to: 2) }
            if null > 2 { close(null) }
        }
    }

    /// SIGTERM runs `beforeExit`, removes the pid file (if any) and exits 0.
    static func onTermination(pidFile: String?, beforeExit: @escaping @Sendable () -> Void) -> DispatchSourceSignal {
        signal(SIGTERM, SIG_IGN)
        let term = DispatchSource.makeSignalSource(signal: SIGTERM)
        term.setEventHandler {
            beforeExit()
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

    /// The thread PAM runs on (--password-auth).
    static func pamThread() -> NIOThreadPool {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }

    /// The host certificate of `--host-certificate`, or `HOSTKEY-cert.pub` when it exists: it must
    /// certify this host key and fit in an announcement; an expired one is still served, with a warning.
    static func loadHostCertificate(explicit: String?, hostKeyPath: String, host: HostKeyPair, log: Logger) throws -> QNSPCertificate? {
        let path = explicit ?? hostKeyPath + "-cert.pub"
        guard explicit != nil || KeyFileIO.exists(path) else { return nil }
        let certificate: QNSPCertificate
        do { certificate = try QNSPCertificate(line: try KeyFileIO.readText(path: path).trimmingCharacters(in: .whitespacesAndNewlines)) } catch {
            throw ToolError("host certificate \(path): \(error)")
        }
        guard certificate.kind == .host else { throw ToolError("host certificate \(path): a user certificate, not a host certificate (sign with qssh-keygen -s CA -h)") }
        guard certificate.subject.blob == host.publicKey.blob else {
            throw ToolError("host certificate \(path) certifies another key (\(certificate.subject.fingerprint)), not this host key (\(host.publicKey.fingerprint))")
        }
        let limit = HandshakeMessages.HostKeyAnnouncement.maxCertificateSize
        guard certificate.blob.count <= limit else {
            throw ToolError("host certificate \(path) is \(certificate.blob.count) bytes; an announcement carries at most \(limit) (use fewer principals or a shorter key id)")
        }
        let now = UInt64(Date().timeIntervalSince1970)
        if now >= certificate.validBefore { log.warning("host certificate \(path) has expired; clients will refuse it") }
        if now < certificate.validAfter { log.warning("host certificate \(path) is not valid yet; clients will refuse it") }
        log.info("host certificate \(path): '\(certificate.keyID)' serial \(certificate.serial) for \(certificate.principals.joined(separator: ","))")
        return certificate
    }

    /// The inner SSH-2 ed25519 host key, derived from the QNSP host key's signing seed.
    static func innerHostKey(_ host: HostKeyPair) throws -> NIOSSHPrivateKey {
        let prk = KeyDerivation.extract(salt: Array("qsshd inner ssh-ed25519 host key v1".utf8), inputKeyMaterial: host.signingKey.seed)
        let seed = KeyDerivation.expand(pseudoRandomKey: prk, info: [], length: 32)
        return NIOSSHPrivateKey(ed25519Key: try Curve25519.Signing.PrivateKey(rawRepresentation: seed))
    }

}

extension QNSPHandshakeGuard.CookieMode: ExpressibleByArgument {}

/// Which admission ticket and which looked-up account belong to which connection (the policy
/// runs on a thread pool, the session starts on the connection's event loop).
final class ConnectionTickets: Sendable {
    private let state = NIOLockedValueBox<[ObjectIdentifier: (ticket: ConnectionAdmission.Ticket, account: SessionUser?)]>([:])
    private let passwordUsers = NIOLockedValueBox<[ObjectIdentifier: String]>([:])
    private let peerAddresses = NIOLockedValueBox<[ObjectIdentifier: SocketAddress]>([:])

    /// The client's address of a connection, when known apart from its channel (a QUIC stream's,
    /// from the QUIC connection); forgotten by ``forgetPeerAddress(for:)``.
    func setPeerAddress(_ address: SocketAddress, for connection: ObjectIdentifier) {
        peerAddresses.withLockedValue { $0[connection] = address }
    }

    func forgetPeerAddress(for connection: ObjectIdentifier) {
        _ = peerAddresses.withLockedValue { $0.removeValue(forKey: connection) }
    }

    /// The client's address: recorded for the connection, else the channel's own.
    func peerAddress(of channel: Channel) -> SocketAddress? {
        peerAddresses.withLockedValue { $0[ObjectIdentifier(channel)] } ?? channel.remoteAddress
    }

    func register(_ ticket: ConnectionAdmission.Ticket, for connection: ObjectIdentifier) {
        state.withLockedValue { $0[connection] = (ticket, nil) }
    }

    func ticket(for connection: ObjectIdentifier) -> ConnectionAdmission.Ticket? { state.withLockedValue { $0[connection]?.ticket } }

    func setAccount(_ account: SessionUser, for connection: ObjectIdentifier) {
        state.withLockedValue { $0[connection]?.account = account }
    }

    func account(for connection: ObjectIdentifier) -> SessionUser? { state.withLockedValue { $0[connection]?.account } }

    /// The user name of a connection whose key was not authorized but may log in with a password.
    func setPasswordUser(_ user: String, for connection: ObjectIdentifier) {
        passwordUsers.withLockedValue { $0[connection] = user }
    }

    func passwordUser(for connection: ObjectIdentifier) -> String? { passwordUsers.withLockedValue { $0[connection] } }

    func remove(_ connection: ObjectIdentifier) -> ConnectionAdmission.Ticket? {
        _ = passwordUsers.withLockedValue { $0.removeValue(forKey: connection) }
        return state.withLockedValue { $0.removeValue(forKey: connection)?.ticket }
    }
}

/// Tells once that a connection has sent its first bytes (admission stops counting it as silent).
final class FirstByteObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private var onFirst: (() -> Void)?
    init(_ onFirst: @escaping () -> Void) { self.onFirst = onFirst }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
        if let onFirst {
            self.onFirst = nil
            onFirst()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}
