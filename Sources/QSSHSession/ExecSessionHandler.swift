import Foundation
import NIOCore
import NIOPosix
import NIOSSH

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Serves one SSH session channel without a terminal: `exec` runs the command with the
/// user's shell, `shell` runs the shell reading commands from stdin. stdout and stderr are
/// streamed separately; the exit status (or signal) is sent before the channel closes.
///
/// With a `pty-req` first, the process runs on a pseudo-terminal of the requested size
/// (stderr merged, as with sshd) and follows `window-change`.
///
/// Processes run as the session's account (`switchUser`, when the server is root) or as the
/// server's own account.
///
/// With `agentForwarding`, a client's agent request (``AgentForwarding/requestName``) before the
/// process starts gets the session a forwarded agent socket (``AgentSocketListener``), named by
/// `QSSH_AUTH_SOCK` in the process's environment and removed once the process has ended.
public final class ExecSessionHandler: ChannelInboundHandler {
    public typealias InboundIn = SSHChannelData
    public typealias OutboundOut = SSHChannelData

    /// Client environment variables a session accepts (like sshd's AcceptEnv LANG LC_*).
    public static func isAllowedEnvironment(_ name: String) -> Bool {
        name == "LANG" || name.hasPrefix("LC_") || name == "TZ" || name == "TERM"
    }

    private let user: SessionUser
    private var environment: [String: String] = [:]
    private var child: ChildProcess?
    private var stdinChannel: Channel?
    private var heldStdin: [ByteBuffer] = []
    private var heldStdinBytes = 0
    private var stdinEnded = false
    private var stdinLastWrite: EventLoopFuture<Void>?
    private var inputPaused = false
    private var openOutputs = 2
    private var termination: ChildProcess.Termination?
    private var context: ChannelHandlerContext?
    private var terminal: (term: String, rows: Int, columns: Int)?

    /// Set for subsystems: the client's SSH version banner (the SFTP server adapts to clients'
    /// known quirks by it).
    public static let peerVersionVariable = "QSSH_PEER_VERSION"
    private let peerVersion: (@Sendable () -> String?)?

    private let onStart: (@Sendable (String) -> Void)?
    private let credentials: ChildProcess.Credentials?
    private let subsystems: [String: [String]]
    private let agentForwarding: Bool
    private let log: (@Sendable (String) -> Void)?
    private var agentPending: EventLoopFuture<AgentSocketListener>?
    private var agentListener: AgentSocketListener?
    private var waitingForAgent = false
    private var ended = false

    /// - Parameters:
    ///   - switchUser: start processes as `user` (needs root); otherwise as this process's account.
    ///   - onStart: told what each session runs ("exec: CMD", "shell", "subsystem: NAME", with " (pty)" and
    ///     " (agent forwarded)"), e.g. for an audit log.
    ///   - subsystems: the program (argv, absolute path first) each subsystem name runs, e.g. "sftp".
    ///   - peerVersion: the client's SSH banner, given to subsystems as `QSSH_PEER_VERSION`.
    ///   - agentForwarding: the server permits agent forwarding (a login's `no-agent-forwarding` still forbids it).
    ///   - log: told about refused or failed agent forwarding.
    public init(
        user: SessionUser, switchUser: Bool = false, subsystems: [String: [String]] = [:], peerVersion: (@Sendable () -> String?)? = nil,
        agentForwarding: Bool = false, log: (@Sendable (String) -> Void)? = nil, onStart: (@Sendable (String) -> Void)? = nil
    ) {
        self.user = user
        self.agentForwarding = agentForwarding
        self.log = log
        self.peerVersion = peerVersion
        self.subsystems = subsystems
        self.credentials = switchUser ? user.credentials : nil
        self.onStart = onStart
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        context.channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).whenFailure { _ in }
    }

    public func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    public func channelInactive(context: ChannelHandlerContext) {
        // The client went away: hang up the session's process group, as sshd does.
        if let child, termination == nil { child.signalGroup(SIGHUP) }
        stdinChannel?.close(promise: nil)
        endAgentForwarding()
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let request as SSHChannelRequestEvent.ExecRequest:
            if runForced(original: request.command, wantReply: request.wantReply, context: context) { return }
            start([user.shell, "-c", request.command], what: "exec: " + request.command, wantReply: request.wantReply, context: context)
        case let request as SSHChannelRequestEvent.ShellRequest:
            if runForced(original: nil, wantReply: request.wantReply, context: context) { return }
            start([user.shell], what: "shell", wantReply: request.wantReply, context: context)
        case let request as SSHChannelRequestEvent.SubsystemRequest:
            if runForced(original: request.subsystem, wantReply: request.wantReply, context: context) { return }
            if let argv = subsystems[request.subsystem] {
                if let version = peerVersion?() { environment[Self.peerVersionVariable] = version }
                start(argv, what: "subsystem: " + request.subsystem, wantReply: request.wantReply, context: context)
            } else if request.wantReply {
                context.channel.triggerUserOutboundEvent(ChannelFailureEvent(), promise: nil)
            }
        case let request as SSHChannelRequestEvent.EnvironmentRequest where request.name == AgentForwarding.requestName:
            let granted = requestAgentForwarding(context: context)
            if request.wantReply {
                if granted {
                    context.channel.triggerUserOutboundEvent(ChannelSuccessEvent(), promise: nil)
                } else {
                    context.channel.triggerUserOutboundEvent(ChannelFailureEvent(), promise: nil)
                }
            }
        case let request as SSHChannelRequestEvent.EnvironmentRequest:
            if Self.isAllowedEnvironment(request.name) { environment[request.name] = request.value }
            if request.wantReply { context.channel.triggerUserOutboundEvent(ChannelSuccessEvent(), promise: nil) }
        case let request as SSHChannelRequestEvent.PseudoTerminalRequest:
            let ok = child == nil && !user.restrictions.noPTY
            if ok {
                let term = request.term.isEmpty || request.term.utf8.count > 64 ? "vt100" : request.term
                terminal = (term, request.terminalRowHeight, request.terminalCharacterWidth)
            }
            if request.wantReply {
                if ok {
                    context.channel.triggerUserOutboundEvent(ChannelSuccessEvent(), promise: nil)
                } else {
                    context.channel.triggerUserOutboundEvent(ChannelFailureEvent(), promise: nil)
                }
            }
        case let request as SSHChannelRequestEvent.WindowChangeRequest:
            if terminal != nil, let child { child.setWindowSize(rows: request.terminalRowHeight, columns: request.terminalCharacterWidth) }
        case let request as SSHChannelRequestEvent.SignalRequest:
            if let child, let number = Self.signalNumber(request.signal) { child.signalGroup(number) }
        case let e as ChannelEvent where e == .inputClosed:
            stdinEnded = true
            closeStdinAfterWrites()
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard case .channel = message.type, case .byteBuffer(let bytes) = message.data else { return }
        if let stdinChannel {
            stdinLastWrite = stdinChannel.writeAndFlush(bytes)
            // Backpressure: while the process's stdin is full, stop reading the SSH channel; its
            // window then stops opening and the client has to wait (no unbounded buffering here).
            if !stdinChannel.isWritable { pauseInput(context) }
        } else {
            heldStdin.append(bytes)
            heldStdinBytes += bytes.readableBytes
            // No process yet (before exec, or while it starts): hold at most ~1 MiB, then stop reading.
            if heldStdinBytes > 1 << 20 { pauseInput(context) }
        }
    }

    // MARK: Process

    /// Runs the login's forced command instead of what was asked (as sshd's ForceCommand does);
    /// false when there is none.
    private func runForced(original: String?, wantReply: Bool, context: ChannelHandlerContext) -> Bool {
        guard let forced = user.restrictions.forcedCommand else { return false }
        if let original { environment["SSH_ORIGINAL_COMMAND"] = original }
        start([user.shell, "-c", forced], what: "forced command: " + forced, wantReply: wantReply, context: context)
        return true
    }

    private func start(_ argv: [String], what: String, wantReply: Bool, context: ChannelHandlerContext) {
        guard child == nil, !waitingForAgent else {
            if wantReply { context.channel.triggerUserOutboundEvent(ChannelFailureEvent(), promise: nil) }
            return
        }
        if let pending = agentPending {
            // The forwarded socket is being set up: the process starts once it listens (or failed).
            waitingForAgent = true
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            pending.whenComplete { _ in
                let handler = bound.value
                handler.waitingForAgent = false
                guard let context = handler.context, !handler.ended else { return }
                handler.start(argv, what: what, wantReply: wantReply, context: context)
            }
            return
        }
        var env = user.environment
        env.merge(environment) { _, client in client }
        if let agentListener { env[AgentForwarding.socketVariable] = agentListener.path }
        let process: ChildProcess
        do {
            if let terminal {
                env["TERM"] = terminal.term
                process = try ChildProcess.spawnOnTerminal(
                    argv, environment: env, directory: user.home, rows: terminal.rows, columns: terminal.columns, as: credentials)
                openOutputs = 1
            } else {
                process = try ChildProcess.spawn(argv, environment: env, directory: user.home, as: credentials)
            }
        } catch {
            if wantReply { context.channel.triggerUserOutboundEvent(ChannelFailureEvent(), promise: nil) }
            context.close(promise: nil)
            return
        }
        child = process
        onStart?(what + (terminal != nil ? " (pty)" : "") + (agentListener != nil ? " (agent forwarded)" : ""))
        if wantReply { context.channel.triggerUserOutboundEvent(ChannelSuccessEvent(), promise: nil) }
        let ssh = context.channel
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        for (fd, type) in [(process.stdout, SSHChannelData.DataType.channel), (process.stderr, .stdErr)] where fd >= 0 {
            NIOPipeBootstrap(group: loop)
                .channelOption(.autoRead, value: false)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelInitializer { pipe in
                    pipe.eventLoop.makeCompletedFuture {
                        try pipe.pipeline.syncOperations.addHandler(ProcessOutputForwarder(ssh: ssh, type: type) { bound.value.outputEnded() })
                    }
                }
                .takingOwnershipOfDescriptor(input: fd)
                .whenFailure { _ in bound.value.outputEnded() }
        }
        NIOPipeBootstrap(group: loop)
            .channelInitializer { pipe in
                pipe.eventLoop.makeCompletedFuture {
                    try pipe.pipeline.syncOperations.addHandler(WritableAgain { bound.value.resumeInput() })
                }
            }
            .takingOwnershipOfDescriptor(output: process.stdin)
            .whenComplete { result in
                let handler = bound.value
                switch result {
                case .success(let channel):
                    handler.stdinChannel = channel
                    for b in handler.heldStdin { handler.stdinLastWrite = channel.write(b) }
                    handler.heldStdin.removeAll()
                    handler.heldStdinBytes = 0
                    channel.flush()
                    if channel.isWritable { handler.resumeInput() }  // else WritableAgain resumes it
                    if handler.stdinEnded { handler.closeStdinAfterWrites() }
                case .failure:
                    close(process.stdin)
                }
            }
        let waiter = Thread { let t = process.waitForExit(); loop.execute { bound.value.exited(t) } }
        waiter.start()
    }

    // MARK: Agent forwarding

    /// Sets up the forwarded agent socket when this server and the login permit it and no process
    /// runs yet; false when refused.
    private func requestAgentForwarding(context: ChannelHandlerContext) -> Bool {
        guard agentForwarding else {
            log?("refused agent forwarding: disabled on this server (--no-agent-forwarding)")
            return false
        }
        guard !user.restrictions.noAgentForwarding else {
            log?("refused agent forwarding: not permitted for this login (no-agent-forwarding)")
            return false
        }
        guard child == nil, !waitingForAgent, agentPending == nil, agentListener == nil, let connection = context.channel.parent else {
            return false
        }
        let pending = AgentSocketListener.start(for: user, connection: connection, log: log)
        agentPending = pending
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let log = self.log
        pending.whenComplete { result in
            let handler = bound.value
            handler.agentPending = nil
            switch result {
            case .success(let listener):
                if handler.ended {
                    listener.stop()
                } else {
                    handler.agentListener = listener
                    log?("agent forwarding for \(handler.user.name): \(listener.path)")
                }
            case .failure(let error):
                log?("agent forwarding: \(error)")
            }
        }
        return true
    }

    /// Removes the forwarded agent socket (the session is over).
    private func endAgentForwarding() {
        ended = true
        agentListener?.stop()
        agentListener = nil
    }

    /// Stops reading the SSH channel (its window stops opening, so the client waits).
    private func pauseInput(_ context: ChannelHandlerContext) {
        guard !inputPaused else { return }
        inputPaused = true
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
    }

    /// The process's stdin drained below the high-water mark: read the SSH channel again.
    private func resumeInput() {
        guard inputPaused else { return }
        inputPaused = false
        context?.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        context?.read()  // an SSH child channel does not start reading by itself when autoRead is turned back on
    }

    /// End of the client's input: close the process's stdin once what was written reached it
    /// (a plain close would drop writes still queued in the pipe channel).
    private func closeStdinAfterWrites() {
        guard let channel = stdinChannel else { return }
        if let last = stdinLastWrite {
            last.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    private func outputEnded() {
        openOutputs -= 1
        finishIfDone()
    }

    private func exited(_ t: ChildProcess.Termination) {
        termination = t
        stdinChannel?.close(promise: nil)
        finishIfDone()
    }

    /// Sends the exit status once the process has ended and both outputs are drained (the
    /// forwarded agent socket is gone by then).
    private func finishIfDone() {
        guard openOutputs == 0, let termination, let context else { return }
        endAgentForwarding()
        let channel = context.channel
        let sent: EventLoopFuture<Void>
        switch termination {
        case .exited(let code):
            sent = channel.triggerUserOutboundEvent(SSHChannelRequestEvent.ExitStatus(exitStatus: Int(code)))
        case .signaled(let number, let core):
            sent = channel.triggerUserOutboundEvent(SSHChannelRequestEvent.ExitSignal(
                signalName: Self.signalName(number), errorMessage: "", language: "", dumpedCore: core))
        }
        sent.whenComplete { _ in channel.close(promise: nil) }
    }

    static let signals: [(String, Int32)] = [
        ("HUP", SIGHUP), ("INT", SIGINT), ("QUIT", SIGQUIT), ("KILL", SIGKILL), ("TERM", SIGTERM),
        ("USR1", SIGUSR1), ("USR2", SIGUSR2), ("ALRM", SIGALRM), ("PIPE", SIGPIPE), ("ABRT", SIGABRT), ("SEGV", SIGSEGV),
    ]
    static func signalNumber(_ name: String) -> Int32? { signals.first { $0.0 == name }?.1 }
    static func signalName(_ number: Int32) -> String { signals.first { $0.1 == number }?.0 ?? "KILL" }
}

@available(*, unavailable)
extension ExecSessionHandler: Sendable {}

/// Tells when a channel becomes writable again (the process's stdin pipe, for backpressure).
final class WritableAgain: ChannelInboundHandler {
    typealias InboundIn = Any
    private let writable: () -> Void
    init(_ writable: @escaping () -> Void) { self.writable = writable }
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { writable() }
        context.fireChannelWritabilityChanged()
    }
}

@available(*, unavailable)
extension WritableAgain: Sendable {}

/// Copies a process's stdout or stderr pipe into the SSH channel, reading the next chunk only
/// after the previous one was written (so a slow client stops the process instead of filling memory).
final class ProcessOutputForwarder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let ssh: Channel
    private let type: SSHChannelData.DataType
    private var ended: (() -> Void)?
    private var lastWrite: EventLoopFuture<Void>?

    init(ssh: Channel, type: SSHChannelData.DataType, ended: @escaping () -> Void) {
        self.ssh = ssh; self.type = type; self.ended = ended
    }

    func channelActive(context: ChannelHandlerContext) { context.read() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastWrite = ssh.write(SSHChannelData(type: type, data: .byteBuffer(unwrapInboundIn(data))))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        ssh.flush()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        if let lastWrite {
            lastWrite.whenComplete { _ in bound.value.read() }
        } else {
            context.read()
        }
        lastWrite = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent { finish(context) }
    }

    func channelInactive(context: ChannelHandlerContext) { finish(context) }

    private func finish(_ context: ChannelHandlerContext) {
        guard let ended else { return }
        self.ended = nil
        ended()
        context.close(promise: nil)
    }
}
