import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSH

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The client side of one SSH session channel: sends `exec` (or `shell`), streams the
/// channel's data to stdout and its extended data to stderr, and reports the exit status.
public final class ExecClientHandler: ChannelInboundHandler {
    public typealias InboundIn = SSHChannelData
    public typealias OutboundOut = SSHChannelData

    /// How the remote side ended.
    public enum Outcome: Sendable, Equatable {
        case exited(Int)
        case signaled(String)
    }

    private let command: String?
    private let subsystem: String?
    private let environment: [String: String]
    private let terminal: (term: String, rows: Int, columns: Int)?
    private let started: EventLoopPromise<Void>
    private let outcome: NIOLockedValueBox<Outcome?>
    private let stdoutFD: CInt
    private let stderrFD: CInt
    private let forwardAgent: Bool

    /// - Parameters:
    ///   - command: nil asks for a shell.
    ///   - subsystem: when set, asks for this subsystem (e.g. "sftp") instead of a command.
    ///   - started: succeeds when the server accepted the request, fails when it refused.
    ///   - terminal: when set, a pseudo-terminal of this type and size is requested first.
    ///   - forwardAgent: ask for agent forwarding (docs/protocol.md §7.9) before the command.
    public init(command: String?, subsystem: String? = nil, environment: [String: String] = [:], terminal: (term: String, rows: Int, columns: Int)? = nil,
                forwardAgent: Bool = false, started: EventLoopPromise<Void>, outcome: NIOLockedValueBox<Outcome?>, stdoutFD: CInt = 1, stderrFD: CInt = 2) {
        self.command = command; self.subsystem = subsystem; self.environment = environment; self.terminal = terminal; self.started = started
        self.outcome = outcome; self.stdoutFD = stdoutFD; self.stderrFD = stderrFD; self.forwardAgent = forwardAgent
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        context.channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).whenFailure { _ in }
        if context.channel.isActive { sendRequests(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        sendRequests(context: context)
        context.fireChannelActive()
    }

    private var requested = false
    private func sendRequests(context: ChannelHandlerContext) {
        guard !requested else { return }
        requested = true
        if forwardAgent {
            // No reply asked (as OpenSSH's auth-agent-req): a refusal is the server's to log, and the
            // command's success reply stays the only one this handler waits for.
            context.triggerUserOutboundEvent(
                SSHChannelRequestEvent.EnvironmentRequest(wantReply: false, name: AgentForwarding.requestName, value: ""), promise: nil)
        }
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) {
            context.triggerUserOutboundEvent(SSHChannelRequestEvent.EnvironmentRequest(wantReply: false, name: name, value: value), promise: nil)
        }
        if let terminal {
            context.triggerUserOutboundEvent(SSHChannelRequestEvent.PseudoTerminalRequest(
                wantReply: false, term: terminal.term, terminalCharacterWidth: terminal.columns, terminalRowHeight: terminal.rows,
                terminalPixelWidth: 0, terminalPixelHeight: 0, terminalModes: SSHTerminalModes([:])), promise: nil)
        }
        if let subsystem {
            context.triggerUserOutboundEvent(SSHChannelRequestEvent.SubsystemRequest(subsystem: subsystem, wantReply: true), promise: nil)
        } else if let command {
            context.triggerUserOutboundEvent(SSHChannelRequestEvent.ExecRequest(command: command, wantReply: true), promise: nil)
        } else {
            context.triggerUserOutboundEvent(SSHChannelRequestEvent.ShellRequest(wantReply: true), promise: nil)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ChannelSuccessEvent:
            started.succeed(())
        case is ChannelFailureEvent:
            started.fail(SSHSessionError.execRefused)
            context.close(promise: nil)
        case let status as SSHChannelRequestEvent.ExitStatus:
            outcome.withLockedValue { $0 = .exited(status.exitStatus) }
        case let signal as SSHChannelRequestEvent.ExitSignal:
            outcome.withLockedValue { $0 = .signaled(signal.signalName) }
        case let e as ChannelEvent where e == .inputClosed:
            break
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard case .byteBuffer(let bytes) = message.data else { return }
        _ = BlockingIO.writeAll(message.type == .stdErr ? stderrFD : stdoutFD, bytes)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        started.fail(SSHSessionError.sessionEndedWithoutStatus)
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension ExecClientHandler: Sendable {}

/// Client helpers: the SSH handler for a QNSP channel and the stdin pump for a session channel.
public enum SSHSessionClient {
    /// Adds the SSH client handler above QNSP (call after the QNSP handshake).
    /// - Parameters:
    ///   - auth: the user auth delegate (default: `none` only, for qsshd's own inner server).
    ///   - hostKeyCheck: refuses an inner host key (for a classical server behind a bridge).
    ///   - authenticated: set to true once the inner SSH user authentication succeeded.
    ///   - remoteForwards: serves the server's `forwarded-tcpip` channels (`-R`); without it they are refused.
    ///   - inbound: serves every channel the server opens (`-R` and agent channels); wins over `remoteForwards`.
    /// - Parameter onError: told the first error that ends the connection (a dead or misbehaving peer).
    public static func install(
        on channel: Channel, username: String, auth: QNSPIdentityClientAuthDelegate? = nil, hostKeyCheck: TunnelHostKeyDelegate.Check? = nil,
        remoteForwards: RemoteForwards? = nil, inbound: ClientInboundChannels? = nil, authenticated: NIOLockedValueBox<Bool>? = nil,
        onError: (@Sendable (String) -> Void)? = nil
    ) throws -> NIOSSHHandler {
        let served = inbound ?? remoteForwards.map { ClientInboundChannels(remoteForwards: $0, agentSocket: nil) }
        let userAuth = auth ?? QNSPIdentityClientAuthDelegate(username: username)
        var configuration = SSHClientConfiguration(
            userAuthDelegate: userAuth, serverAuthDelegate: hostKeyCheck.map { TunnelHostKeyDelegate(check: $0) } ?? userAuth.hostKeys)
        configuration.transportProtectionSchemes = QNSPTunnelTransportProtection.preferred(after: configuration.transportProtectionSchemes)
        let handler = NIOSSHHandler(
            role: .client(configuration),
            allocator: channel.allocator, inboundChildChannelInitializer: served.map { channels in { channels.initializer(child: $0, type: $1) } })
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.pipeline.syncOperations.addHandler(CloseOnError(log: onError, authenticated: authenticated))
        return handler
    }

    /// Opens an SSH channel of `type` on `connection` (the QNSP channel carrying the SSH handler),
    /// from any thread; `initializer` sets the child up before it becomes active.
    public static func createChannel(
        on connection: Channel, type: SSHChannelType, initializer: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        let open: @Sendable () -> EventLoopFuture<Channel> = {
            let promise = connection.eventLoop.makePromise(of: Channel.self)
            guard let ssh = try? connection.pipeline.syncOperations.handler(type: NIOSSHHandler.self) else {
                promise.fail(ForwardingRelay.ForwardingError.noSSHHandler)
                return promise.futureResult
            }
            ssh.createChannel(promise, channelType: type) { child, _ in child.eventLoop.makeCompletedFuture { try initializer(child) } }
            return promise.futureResult
        }
        return connection.eventLoop.inEventLoop ? open() : connection.eventLoop.flatSubmit(open)
    }

    /// Pumps `fd` into the session channel as channel data; sends EOF at end of file.
    /// With `escapes`, `~.` after a newline closes the session (`onDisconnect` is told first).
    public static func pumpStdin(fd: CInt = 0, into channel: Channel, escapes: Bool = false, onDisconnect: (@Sendable () -> Void)? = nil) {
        BlockingIO.pump(fd, into: channel, escapes: escapes ? EscapeScanner() : nil, onDisconnect: onDisconnect) {
            SSHChannelData(type: .channel, data: .byteBuffer($0))
        }
    }
}
