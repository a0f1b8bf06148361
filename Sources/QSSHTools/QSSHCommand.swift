import ArgumentParser
import Dispatch
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSH
import QNSP
import QNSPNIO
import QSSHSession

/// `qssh`: the client. Runs a command (or a shell) on a qsshd host over a QNSP tunnel.
public struct QSSHCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "qssh",
        abstract: "Post-quantum SSH client: run a command or a shell on a qsshd host.",
        discussion: """
            qssh connects over QNSP (X-Wing key exchange; your ML-DSA-65 key from qssh-keygen), checks
            the host key against ~/.qssh/known_hosts (asking on first contact, refusing a changed key),
            and runs COMMAND with its stdout and stderr kept apart. The exit status is the remote
            command's; 255 means the connection failed.

            Without a command and with a terminal on stdin, qssh asks for a remote terminal and an
            interactive shell (the local terminal is in raw mode until the session ends); -t asks for
            one with a command too, -T never.

            In an interactive session, ~. after a newline disconnects and ~~ sends a ~.

            Not yet: forwarding, ProxyJump, config file.

            Examples:
              qssh -p 22222 alice@server.example uptime
              tar cz dir | qssh server 'tar xz -C /tmp'
            """)

    @Option(name: .customShort("p"), help: "Port of qsshd.")
    var port: Int = 22222

    @Option(name: .customShort("i"), help: "Identity (user key) file.")
    var identity: String = NSHomeDirectory() + "/.qssh/id_mldsa65"

    @Option(name: .customShort("l"), help: "User to log in as.")
    var loginName: String?

    @Option(name: .customShort("o"), help: "Option in ssh_config style; supported: BatchMode=yes|no, StrictHostKeyChecking=accept-new|yes, ServerAliveInterval=SECONDS (default 30, 0 = off), ServerAliveCountMax=N (default 3).")
    var sshOptions: [String] = []

    @Option(name: .long, help: "known_hosts file.")
    var knownHosts: String = NSHomeDirectory() + "/.qssh/known_hosts"

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

    public func run() throws {
        if forceTTY && noTTY { throw ToolError("-t and -T contradict each other") }
        var batch = false, acceptNew = false, aliveInterval: Int64 = 30, aliveCount = 3
        for option in sshOptions {
            let parts = option.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { throw ToolError("-o expects Name=value, got '\(option)'") }
            switch (parts[0].lowercased(), parts[1].lowercased()) {
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
        var host = destination
        var user = loginName ?? ProcessInfo.processInfo.environment["USER"] ?? SessionUser.current()?.name ?? "root"
        if let at = destination.lastIndex(of: "@") {
            if loginName == nil { user = String(destination[..<at]) }
            host = String(destination[destination.index(after: at)...])
        }
        guard !host.isEmpty, !user.isEmpty else { throw ToolError("bad destination '\(destination)'") }

        var options = QNSPBootstrap.Options()
        if aliveInterval > 0 { options.keepalive = .init(interval: .seconds(aliveInterval), maxMissed: aliveCount) }
        options.handshakeTimeout = .seconds(30)
        let client = TunnelClient(
            host: host, port: port, identityPath: identity, user: user, knownHostsPath: knownHosts,
            acceptNew: acceptNew, batch: batch, verbose: verbose, options: options, toolName: "qssh")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // The group is not shut down: the stdin thread may still touch the channel until the
        // process exits, and scheduling on a stopped loop is an error. The process ends right after.
        // The SSH handler goes in before the handshake: the server speaks first once the
        // tunnel is up, and bytes arriving before a handler exists would be lost.
        let loginUser = user
        let connectionError = NIOLockedValueBox<String?>(nil)
        let (channel, _) = try client.open(group: group) { channel in
            channel.eventLoop.makeCompletedFuture {
                _ = try SSHSessionClient.install(on: channel, username: loginUser) { message in
                    connectionError.withLockedValue { if $0 == nil { $0 = message } }
                }
            }
        }
        let outcome = NIOLockedValueBox<ExecClientHandler.Outcome?>(nil)
        let started = channel.eventLoop.makePromise(of: Void.self)
        let line = command.isEmpty ? nil : command.joined(separator: " ")
        var env: [String: String] = [:]
        for (k, v) in ProcessInfo.processInfo.environment where ExecSessionHandler.isAllowedEnvironment(k) && k != "TERM" { env[k] = v }
        let environment = env
        let stdinIsTerminal = isatty(0) == 1
        let wantTerminal = forceTTY || (!noTTY && command.isEmpty && stdinIsTerminal)
        var terminal: (term: String, rows: Int, columns: Int)?
        if wantTerminal {
            let size = RawTerminal.windowSize() ?? (24, 80)
            terminal = (ProcessInfo.processInfo.environment["TERM"] ?? "xterm", size.rows, size.columns)
        }
        let requestedTerminal = terminal
        let session: Channel
        do {
            session = try channel.eventLoop.flatSubmit { () -> EventLoopFuture<Channel> in
                let promise = channel.eventLoop.makePromise(of: Channel.self)
                guard let ssh = try? channel.pipeline.syncOperations.handler(type: NIOSSHHandler.self) else {
                    promise.fail(SSHSessionError.sessionEndedWithoutStatus)
                    return promise.futureResult
                }
                ssh.createChannel(promise, channelType: .session) { child, _ in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(
                            ExecClientHandler(command: line, environment: environment, terminal: requestedTerminal, started: started, outcome: outcome))
                    }
                }
                return promise.futureResult
            }.wait()
            try started.futureResult.wait()
        } catch {
            started.fail(error)  // a promise must not be dropped incomplete
            if let why = connectionError.withLockedValue({ $0 }) { throw ToolError("connection to \(host) lost: \(why)") }
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
        SSHSessionClient.pumpStdin(into: session, escapes: terminal != nil && stdinIsTerminal) {
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
            Terminal.warn("qssh: remote command killed by signal \(name)")
            throw ExitCode(255)
        case nil:
            if let why = connectionError.withLockedValue({ $0 }) { throw ToolError("connection to \(host) lost: \(why)") }
            throw ToolError("the session on \(host) ended without an exit status")
        }
    }
}
