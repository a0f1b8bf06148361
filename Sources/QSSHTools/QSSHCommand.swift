import ArgumentParser
import Dispatch
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSH
import QNSP
import QNSPCrypto
import QNSPNIO
import QSSHSession

/// `qssh`: the client. Runs a command (or a shell) on a qsshd host over a QNSP tunnel.
public struct QSSHCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "qssh",
        abstract: "Post-quantum SSH client: run a command or a shell on a qsshd host.",
        discussion: """
            qssh connects over QNSP (X-Wing key exchange; your ML-DSA-65 key from
            qssh-keygen), checks the host key against ~/.qssh/known_hosts (asking on
            first contact, refusing a changed key), and runs COMMAND with its stdout and
            stderr kept apart. The exit status is the remote command's; 255 means the
            connection failed.

            Without a command and with a terminal on stdin, qssh asks for a remote
            terminal and an interactive shell (the local terminal is in raw mode until
            the session ends); -t asks for one with a command too, -T never.

            In an interactive session, ~. after a newline disconnects and ~~ sends a ~.

            Forwarding works as with ssh: -L [bind:]port:host:hostport listens here and
            connects there, -R [bind:]port:host:hostport listens there and connects here
            (port 0 picks a free port and prints it: "Allocated port N for ..."), -D
            [bind:]port is a SOCKS4/4a/5 proxy here whose connections leave from the
            server. Listeners bind 127.0.0.1 unless a bind address is given ("*" for
            all). -N runs no command (forwarding only). -W host:port joins stdin/stdout
            to host:port as seen from the server (for ProxyCommand).

            -J [user@]jump[:port][,...] reaches the destination through jump hosts; each
            hop runs 'qssh -W' on the previous one, so every QNSP handshake is end to
            end and a jump host only relays ciphertext. -o ProxyCommand=CMD speaks QNSP
            over CMD's stdin/stdout (%h host, %p port, %r user, %% a percent sign).

            'qssh tunnel [user@]host' is a stdio mode for stock OpenSSH: it joins
            stdin/stdout to the SSH-2 server inside the tunnel (see the README recipe).

            -A forwards the agent named by QSSH_AUTH_SOCK (qssh-agent) to the session:
            qsshd gives the remote command a socket of its own in QSSH_AUTH_SOCK, so
            qssh, qssh-add, qscp and qsftp there use this agent's keys, as with ssh -A.
            The keys never leave this machine, but whoever can use that socket on the
            server (the account itself, and root) can have them sign while the session
            lasts: forward only to hosts you trust, and prefer -J, which needs no agent
            on the jump host. -a (the default) does not forward. -o ForwardAgent=yes|no
            and the config's ForwardAgent set the same; -A or -a on the command line
            wins. Without a session (-N, -W) nothing is forwarded.

            -f goes to the background once the connection, the forwards and the command
            are set up (with -N: once the forwards are); stdin is /dev/null.

            ~/.qssh/config (or -F FILE) holds per-host settings in ssh_config style:
            Host patterns, then HostName, Port, User, IdentityFile, ProxyJump,
            ProxyCommand, LocalForward, RemoteForward, DynamicForward, ForwardAgent, BatchMode,
            StrictHostKeyChecking, ServerAliveInterval, ServerAliveCountMax,
            ExitOnForwardFailure, HashKnownHosts, UserKnownHostsFile,
            QNSPKnownHostsFile, PasswordAuthentication. The first value found for a
            keyword wins; the command line wins over all.

            Password login: when qsshd runs with --password-auth and does not accept
            the key (or there is no identity file: a throwaway key then opens the
            tunnel), the server asks for the account's password inside the tunnel,
            after the QNSP handshake has proved the server. qssh asks for it up to 3
            times, on the terminal without echo or through SSH_ASKPASS (when there is
            no terminal, or with SSH_ASKPASS_REQUIRE=force); never with BatchMode=yes
            or PasswordAuthentication=no.

            Examples:
              qssh -p 22222 alice@server.example uptime
              tar cz dir | qssh server 'tar xz -C /tmp'
              qssh -N -L 8080:intranet:80 -D 1080 gateway
              qssh -J alice@bastion:22222 alice@inner 'hostname'
            """)

    @OptionGroup var connection: ClientOptions
    var port: Int { connection.port }
    var identity: String { connection.identity }
    var knownHosts: String { connection.knownHosts }

    @Option(name: .customShort("o"), help: "Option in ssh_config style; supported: BatchMode=yes|no, StrictHostKeyChecking=accept-new|yes, ServerAliveInterval=SECONDS (default 30, 0 = off), ServerAliveCountMax=N (default 3), ProxyCommand=CMD, ExitOnForwardFailure=yes|no, HashKnownHosts=yes|no, PasswordAuthentication=yes|no (default yes: when the server offers password login and no key was accepted, ask on the terminal or through SSH_ASKPASS; never with BatchMode), IdentityFile=FILE and UserKnownHostsFile=FILE (OpenSSH ed25519 key and known_hosts for a classical sshd behind a qsshd bridge), HostName=NAME, Transport=tcp|quic|auto (QUIC: UDP on the same port; auto tries QUIC first, then TCP), ForwardAgent=yes|no (as -A / -a).")
    var sshOptions: [String] = []

    @Option(name: .customShort("L"), help: ArgumentHelp("Forward a local port: connections to bind:port go to host:hostport from the server.", valueName: "[bind:]port:host:hostport"))
    var localForwards: [String] = []

    @Option(name: .customShort("R"), help: ArgumentHelp("Forward a remote port: the server listens on bind:port and connections come to host:hostport from here.", valueName: "[bind:]port:host:hostport"))
    var remoteForwards: [String] = []

    @Option(name: .customShort("D"), help: ArgumentHelp("SOCKS4/4a/5 proxy on a local port; connections leave from the server.", valueName: "[bind:]port"))
    var dynamicForwards: [String] = []

    @Flag(name: .customShort("s"), help: "The command is a subsystem name (e.g. sftp).")
    var subsystemMode = false

    @Flag(name: .customShort("f"), help: "Go to the background once authenticated and the forwards (and the command) are set up; stdin is /dev/null.")
    var background = false

    @Option(name: .long, help: .hidden)
    var internalNotifyFD: Int32?

    @Option(name: .long, help: ArgumentHelp("Stealth mode (docs/protocol.md §9): the server's stealth line, its base64 part, or a file holding it (also -o Stealth=..., config Stealth).", valueName: "line|file"))
    var stealth: String?

    @Option(name: .long, help: ArgumentHelp("Cover traffic: off, random or constant (docs/protocol.md §9.6; also -o Padding=, config Padding).", valueName: "mode"))
    var padding: String?

    @Flag(name: .long, help: "With --stealth: a printable first-flight prefix for networks that block random-looking traffic (docs/protocol.md §9.8; also -o Mimic=yes, config Mimic).")
    var mimic = false

    @Flag(exclusivity: .chooseLast)
    var agentForwarding: AgentForwardingFlag?

    @Flag(name: .customShort("N"), help: "Run no remote command (forwarding only).")
    var noCommand = false

    @Option(name: .customShort("W"), help: ArgumentHelp("Join stdin/stdout to host:port, connected from the server.", valueName: "host:port"))
    var stdioForward: String?

    @Option(name: .customShort("F"), help: ArgumentHelp("Client configuration file (default ~/.qssh/config; 'none' for none).", valueName: "file"))
    var configFile: String?

    @Option(name: .customShort("J"), help: ArgumentHelp("Jump hosts, comma-separated; each hop is a QNSP handshake end to end.", valueName: "[user@]host[:port][,...]"))
    var jump: String?

    @Flag(name: .customShort("T"), help: "Do not ask for a terminal.")
    var noTTY = false

    @Flag(name: .customShort("t"), help: "Ask for a terminal even for a command (default: only for a shell on a terminal).")
    var forceTTY = false

    @Flag(name: .shortAndLong, help: "Print connection details to stderr.")
    var verbose = false

    @Argument(help: "[user@]host")
    var destination: String

    @Argument(parsing: .captureForPassthrough, help: "Command to run (default: a shell without a terminal).")
    var command: [String] = []

    public init() {}

    /// Where a session reads its input and writes its output: the process's stdin and stdout, or (for
    /// qscp and qsftp, which run this client in their own process) one end of a socket pair.
    struct Stdio: Sendable {
        var input: CInt
        var output: CInt
        static let process = Stdio(input: 0, output: 1)
    }

    public func run() throws {
        try run(stdio: .process)
    }

    func run(stdio: Stdio) throws {
        if forceTTY && noTTY { throw ToolError("-t and -T contradict each other") }
        var batch = false, acceptNew = false, aliveInterval: Int64 = 30, aliveCount = 3
        var proxyCommand: String?, exitOnForwardFailure = false
        var hashKnownHosts = false
        var transport = TunnelClient.Transport.tcp
        var hostName: String?
        var stealthValue = stealth
        var stealthFromOption: String?
        var paddingValue = padding
        var mimicValue = mimic
        var forwardAgent = false
        var classicalKeyFiles: [String] = [], sshKnownHosts = NSHomeDirectory() + "/.ssh/known_hosts"
        var passwordAuthentication = true
        for option in sshOptions {
            let parts = option.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { throw ToolError("-o expects Name=value, got '\(option)'") }
            switch (parts[0].lowercased(), parts[1].lowercased()) {
            case ("proxycommand", "none"): proxyCommand = nil
            case ("proxycommand", _): proxyCommand = parts[1]
            case ("exitonforwardfailure", "yes"): exitOnForwardFailure = true
            case ("exitonforwardfailure", "no"): exitOnForwardFailure = false
            case ("hostname", _): hostName = parts[1]
            case ("stealth", "none"), ("stealth", "no"): stealthFromOption = ""
            case ("stealth", _): stealthFromOption = parts[1]
            case ("padding", _): if padding == nil { paddingValue = parts[1] }
            case ("mimic", "yes"): mimicValue = true
            case ("mimic", "no"): mimicValue = mimic
            case ("transport", let v):
                guard let t = TunnelClient.Transport(rawValue: v) else { throw ToolError("Transport must be tcp, quic or auto, not '\(parts[1])'") }
                transport = t
            case ("forwardagent", "yes"): forwardAgent = true
            case ("forwardagent", "no"): forwardAgent = false
            case ("forwardagent", _): throw ToolError("ForwardAgent must be yes or no, not '\(parts[1])'")
            case ("hashknownhosts", "yes"): hashKnownHosts = true
            case ("hashknownhosts", "no"): hashKnownHosts = false
            case ("identityfile", _): classicalKeyFiles.append((parts[1] as NSString).expandingTildeInPath)
            case ("userknownhostsfile", _): sshKnownHosts = (parts[1] as NSString).expandingTildeInPath
            case ("passwordauthentication", "yes"): passwordAuthentication = true
            case ("passwordauthentication", "no"): passwordAuthentication = false
            case ("batchmode", "yes"): batch = true
            case ("batchmode", "no"): batch = false
            case ("stricthostkeychecking", "accept-new"): acceptNew = true
            case ("stricthostkeychecking", "yes"): acceptNew = false
            case ("serveraliveinterval", let v):
                guard let n = Int64(v), n >= 0 else { throw ToolError("ServerAliveInterval must be a number of seconds") }
                aliveInterval = n
            case ("serveralivecountmax", let v):
                guard let n = Int(v), n >= 1 else { throw ToolError("ServerAliveCountMax must be at least 1") }
                aliveCount = n
            default: throw ToolError("unsupported option -o \(option)")
            }
        }
        let (user, alias) = try connection.resolve(destination)
        let host = hostName ?? alias  // -o HostName / the config's HostName: the alias only selected settings
        let forwards = try ForwardRequests(local: localForwards, remote: remoteForwards, dynamic: dynamicForwards)
        let stdioTarget = try stdioForward.map { text in
            do { return try ForwardSpec.parse(hostPort: text) } catch { throw ToolError("-W: \(error)") }
        }
        if stdioTarget != nil && (!command.isEmpty || noCommand) { throw ToolError("-W cannot be combined with a command or -N") }
        if noCommand && !command.isEmpty { throw ToolError("-N means no command, but one was given") }
        if background && internalNotifyFD == nil {
            if stdioForward != nil { throw ToolError("-f cannot be combined with -W") }
            if command.isEmpty && !noCommand { throw ToolError("-f needs a command or -N") }
            return try goToBackground()
        }
        if subsystemMode && command.count != 1 { throw ToolError("-s needs exactly one subsystem name, e.g. 'qssh -s host sftp'") }
        if let jump {
            if proxyCommand != nil { throw ToolError("-J and -o ProxyCommand cannot be combined") }
            proxyCommand = try jumpCommand(jump, batch: batch, acceptNew: acceptNew, targetIsIPv6: host.contains(":"))
        }

        var options = QNSPBootstrap.Options()
        if aliveInterval > 0 { options.keepalive = .init(interval: .seconds(aliveInterval), maxMissed: aliveCount) }
        options.handshakeTimeout = .seconds(30)
        if stealthValue == nil { stealthValue = stealthFromOption }
        if let paddingValue { options.padding = try StealthArgument.padding(paddingValue) }
        if let stealthValue, !stealthValue.isEmpty {
            options.stealth = try StealthArgument.clientOptions(stealthValue, mimic: mimicValue)
        } else if mimicValue {
            throw ToolError("--mimic needs --stealth")
        }
        var client = TunnelClient(
            host: host, port: port, identityPath: identity, user: user, knownHostsPath: knownHosts,
            acceptNew: acceptNew, batch: batch, verbose: verbose, options: options, toolName: "qssh")
        if let proxyCommand {
            // The values reach a shell unquoted (as with ssh): allow only what names a host or user.
            let safe = { (s: String) in !s.hasPrefix("-") && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._:-".contains($0)) } }
            guard safe(host), safe(user) else { throw ToolError("host or user name '\(user)@\(host)' has characters a proxy command must not see") }
            client.proxyCommand = Self.substitute(proxyCommand, host: host, port: port, user: user)
        }
        client.hashKnownHosts = hashKnownHosts
        client.passwordFallback = passwordAuthentication && !batch
        client.transport = transport
        let remote = forwards.remote.isEmpty ? nil : RemoteForwards(log: { Terminal.warn("qssh: " + $0) })
        if let choice = agentForwarding { forwardAgent = choice == .forward }
        // As ssh: -A without an agent, or without a session to ask on (-N, -W), forwards nothing
        // (said so with -v); then agent channels are refused like any unasked channel.
        let hasSession = !noCommand && stdioTarget == nil
        let agentSocket = forwardAgent && hasSession ? AgentClient.fromEnvironment()?.socketPath : nil
        if forwardAgent && verbose && agentSocket == nil {
            Terminal.warn(hasSession ? "qssh: -A: no agent (QSSH_AUTH_SOCK is not set); not forwarding" : "qssh: -A: no session (-N or -W), so no agent is forwarded")
        }
        let inbound = ClientInboundChannels(
            remoteForwards: remote, agentSocket: agentSocket, log: { Terminal.warn("qssh: " + $0) })
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // The group is not shut down: the stdin thread may still touch the channel until the
        // process exits, and scheduling on a stopped loop is an error. The process ends right after.
        // The SSH handler goes in before the handshake: the server speaks first once the
        // tunnel is up, and bytes arriving before a handler exists would be lost.
        let loginUser = user
        let connectionError = NIOLockedValueBox<String?>(nil)
        let innerAuthenticated = NIOLockedValueBox(false)

        let bridgedHostKeys = OpenSSHKnownHosts(path: sshKnownHosts)
        // Only a classical server behind a bridge is checked (qsshd's own inner server accepts `none`,
        // and its key is derived from the QNSP host key, which was checked already).
        let hostKeyCheck: TunnelHostKeyDelegate.Check = { key in
            switch bridgedHostKeys.check(host: host, port: 22, key: key) {
            case .mismatch(let line):
                return "the SSH server behind \(host)'s bridge presented a host key that contradicts \(bridgedHostKeys.path):\(line); refusing (possible man-in-the-middle on the server side)"
            case .revoked(let line):
                return "the SSH server behind \(host)'s bridge presented a key marked @revoked in \(bridgedHostKeys.path):\(line); refusing"
            case .match, .unknown:
                return nil
            }
        }
        // Password login (docs/protocol.md §7.10): only when the server asks for one inside the
        // authenticated tunnel, after the keys, never in batch mode.
        var askPassword: (@Sendable (Int) -> String?)?
        if passwordAuthentication && !batch {
            let prompt = "\(user)@\(host)'s password: "
            askPassword = { @Sendable (attempt: Int) -> String? in
                if attempt > 1 { Terminal.warn("Permission denied, please try again.") }
                return Passphrase.ask(prompt)
            }
        }
        let auth = QNSPIdentityClientAuthDelegate(
            username: user, classicalKeys: classicalKeyLoaders(classicalKeyFiles, batch: batch), classicalHostKeyCheck: hostKeyCheck,
            askPassword: askPassword)
        let (channel, _) = try client.open(group: group) { channel in
            channel.eventLoop.makeCompletedFuture {
                _ = try SSHSessionClient.install(
                    on: channel, username: loginUser, auth: auth, inbound: inbound, authenticated: innerAuthenticated
                ) { message in
                    connectionError.withLockedValue { if $0 == nil { $0 = message } }
                }
            }
        }
        try forwards.start(on: channel, remote: remote, exitOnFailure: exitOnForwardFailure, verbose: verbose)
        if let (targetHost, targetPort) = stdioTarget {
            try StdioForward.run(on: channel, host: targetHost, port: targetPort, connectionError: connectionError)
            return
        }
        if noCommand {
            notifyReady()
            try? channel.closeFuture.wait()
            if let why = connectionError.withLockedValue({ $0 }) { throw ToolError("connection to \(host) lost: \(why)") }
            return
        }
        let outcome = NIOLockedValueBox<ExecClientHandler.Outcome?>(nil)
        let started = channel.eventLoop.makePromise(of: Void.self)
        let line = command.isEmpty ? nil : command.joined(separator: " ")
        let subsystemName = subsystemMode ? command.first : nil
        var env: [String: String] = [:]
        for (k, v) in ProcessInfo.processInfo.environment where ExecSessionHandler.isAllowedEnvironment(k) && k != "TERM" { env[k] = v }
        let environment = env
        let stdinIsTerminal = isatty(stdio.input) == 1
        let wantTerminal = forceTTY || (!noTTY && command.isEmpty && stdinIsTerminal)
        var terminal: (term: String, rows: Int, columns: Int)?
        if wantTerminal {
            let size = RawTerminal.windowSize() ?? (24, 80)
            terminal = (ProcessInfo.processInfo.environment["TERM"] ?? "xterm", size.rows, size.columns)
        }
        let requestedTerminal = terminal
        let session: Channel
        do {
            session = try SSHSessionClient.createChannel(on: channel, type: .session) { child in
                try child.pipeline.syncOperations.addHandler(
                    ExecClientHandler(
                        command: line, subsystem: subsystemName, environment: environment, terminal: requestedTerminal,
                        forwardAgent: agentSocket != nil, started: started, outcome: outcome, stdoutFD: stdio.output))
            }.wait()
            try started.futureResult.wait()
            notifyReady()
        } catch {
            started.fail(error)  // a promise must not be dropped incomplete
            let why = connectionError.withLockedValue({ $0 })
            if !innerAuthenticated.withLockedValue({ $0 }) {
                throw ToolError("no SSH session with \(host): " + (why ?? "the server closed the connection before the SSH session started (a qsshd --bridge whose SSH server is down? see the server's log)"))
            }
            if let why { throw ToolError("connection to \(host) lost: \(why)") }
            throw ToolError("cannot start the session on \(host): \(error)")
        }
        let raw = RawTerminal()
        var resize: DispatchSourceSignal?
        if terminal != nil && stdinIsTerminal {
            raw.enable()
            signal(SIGWINCH, SIG_IGN)  // delivered to the dispatch source instead
            let source = DispatchSource.makeSignalSource(signal: SIGWINCH)
            source.setEventHandler {
                guard let size = RawTerminal.windowSize() else { return }
                session.triggerUserOutboundEvent(SSHChannelRequestEvent.WindowChangeRequest(
                    terminalCharacterWidth: size.columns, terminalRowHeight: size.rows, terminalPixelWidth: 0, terminalPixelHeight: 0),
                    promise: nil)
            }
            source.resume()
            resize = source
        }
        defer {
            resize?.cancel()
            raw.restore()
        }
        let escaped = NIOLockedValueBox(false)
        SSHSessionClient.pumpStdin(fd: stdio.input, into: session, escapes: terminal != nil && stdinIsTerminal) {
            escaped.withLockedValue { $0 = true }
        }
        try? session.closeFuture.wait()
        try? channel.close().wait()
        if escaped.withLockedValue({ $0 }) {
            raw.restore()
            Terminal.warn("\r\nConnection to \(host) closed (~.).")
            throw ExitCode(255)
        }
        switch outcome.withLockedValue({ $0 }) {
        case .exited(let code)?:
            if code != 0 { throw ExitCode(Int32(truncatingIfNeeded: code)) }
        case .signaled(let name)?:
            Terminal.warn("qssh: remote command killed by signal \(PrintableText.escaped(name))")
            throw ExitCode(255)
        case nil:
            if let why = connectionError.withLockedValue({ $0 }) { throw ToolError("connection to \(host) lost: \(why)") }
            throw ToolError("the session on \(host) ended without an exit status")
        }
    }

    /// -f: runs this command again, detached (stdin /dev/null, new session), and returns 0 once it
    /// reports on fd 3 that it is ready; if it fails first, its messages are on stderr already and
    /// its exit status becomes ours.
    func goToBackground() throws {
        let me = ChildProcess.currentExecutable
        var args = Array(CommandLine.arguments.dropFirst())
        if let i = args.firstIndex(of: "-f") { args.remove(at: i) }
        var fds: [CInt] = [0, 0]
        guard pipe(&fds) == 0 else { throw ToolError("pipe: \(String(cString: strerror(errno)))") }
        let pid: pid_t
        do {
            pid = try ChildProcess.spawnDetached([me, "--internal-notify-fd", "3"] + args, environment: ProcessInfo.processInfo.environment, notify: fds[1])
        } catch {
            close(fds[0]); close(fds[1])
            throw ToolError("cannot go to the background: \(error)")
        }
        close(fds[1])
        var byte: UInt8 = 0
        var n = 0
        repeat { n = read(fds[0], &byte, 1) } while n < 0 && errno == EINTR
        close(fds[0])
        if n == 1 { return }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        throw ExitCode(status & 0x7f == 0 ? (status >> 8) & 0xff : 255)
    }

    /// In the background child: tells the waiting parent that everything is set up.
    func notifyReady() {
        guard let fd = internalNotifyFD else { return }
        var ok: UInt8 = 1
        _ = write(fd, &ok, 1)
        close(fd)
    }

    /// Classical (OpenSSH ed25519) keys for a stock sshd behind a qsshd bridge: the files named
    /// with -o IdentityFile, else ~/.ssh/id_ed25519 when it exists. Each is read only when the
    /// server asks for a key; a protected one asks for its passphrase then (never in batch mode).
    func classicalKeyLoaders(_ files: [String], batch: Bool) -> [(name: String, load: @Sendable () -> NIOSSHPrivateKey?)] {
        var paths = files
        if paths.isEmpty {
            let path = NSHomeDirectory() + "/.ssh/id_ed25519"
            guard FileManager.default.fileExists(atPath: path) else { return [] }
            paths = [path]
        }
        return paths.map { path in
            (path, {
                do {
                    return try OpenSSHPrivateKey.load(path: path) {
                        batch ? nil : Passphrase.ask("Enter passphrase for key '\(path)': ")
                    }
                } catch {
                    Terminal.warn("qssh: \(path): \(error)")
                    return nil
                }
            })
        }
    }

    /// The proxy command for `-J`: this program with `-W` on the last hop, earlier hops as its own `-J`.
    /// Settings not named on the command line are left to the jump host's own (config file, defaults).
    func jumpCommand(_ spec: String, batch: Bool, acceptNew: Bool, targetIsIPv6: Bool = false) throws -> String {
        var hops = spec.split(separator: ",").map(String.init)
        guard let last = hops.popLast(), !last.isEmpty else { throw ToolError("-J: no jump host given") }
        var userPart = "", hostPart = last
        if let at = last.lastIndex(of: "@") {
            userPart = String(last[...at])
            hostPart = String(last[last.index(after: at)...])
        }
        var jumpPort: Int?
        let parts = try { () throws -> [String] in
            do { return try ForwardSpec.split(hostPart) } catch { throw ToolError("-J: \(error)") }
        }()
        if parts.count == 2 {
            guard let p = Int(parts[1]), (1...65535).contains(p) else { throw ToolError("-J: bad port in '\(last)'") }
            jumpPort = p
        } else if parts.count != 1 || parts[0].isEmpty {
            throw ToolError("-J: bad jump host '\(last)'")
        }
        let jumpHost = parts[0]
        var args = [try Self.executablePath()]
        if !hops.isEmpty { args += ["-J", hops.joined(separator: ",")] }
        if let configFile { args += ["-F", configFile] }
        if identity != ClientOptions.defaultIdentity { args += ["-i", identity] }
        if knownHosts != ClientOptions.defaultKnownHosts { args += ["--known-hosts", knownHosts] }
        if let jumpPort { args += ["-p", String(jumpPort)] }
        if batch { args += ["-o", "BatchMode=yes"] }
        if acceptNew { args += ["-o", "StrictHostKeyChecking=accept-new"] }
        args += ["-W", targetIsIPv6 ? "[%h]:%p" : "%h:%p", userPart + (jumpHost.contains(":") ? "[\(jumpHost)]" : jumpHost)]
        return args.map { Self.shellQuote($0) }.joined(separator: " ")
    }

    /// The qssh executable for jump hops: this one, or (when qscp or qsftp runs the client in their
    /// process) the qssh next to it, else the first on PATH.
    static func executablePath() throws -> String {
        let me = ChildProcess.currentExecutable
        if (me as NSString).lastPathComponent == "qssh" { return me }
        let sibling = (me as NSString).deletingLastPathComponent + "/qssh"
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin").split(separator: ":") {
            let path = "\(dir)/qssh"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw ToolError("qssh (for -J) not found next to \((me as NSString).lastPathComponent) or on PATH")
    }

    /// ProxyCommand substitutions: %h, %p, %r and %%.
    static func substitute(_ command: String, host: String, port: Int, user: String) -> String {
        var out = "", percent = false
        for c in command {
            if percent {
                switch c {
                case "h": out += host
                case "p": out += String(port)
                case "r": out += user
                case "%": out += "%"
                default: out += "%" + String(c)
                }
                percent = false
            } else if c == "%" {
                percent = true
            } else {
                out.append(c)
            }
        }
        return percent ? out + "%" : out
    }

    static func shellQuote(_ s: String) -> String {
        if !s.isEmpty && s.allSatisfy({ $0.isLetter || $0.isNumber || "/-_.,:@%=+".contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
