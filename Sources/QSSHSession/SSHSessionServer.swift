import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSH
import QNSPCrypto
import QNSPNIO

/// Runs the SSH-2 connection protocol (swift-nio-ssh, server role) on an established QNSP
/// channel: inner user auth bound to the QNSP identity, session channels served by
/// `ExecSessionHandler`, `direct-tcpip` channels and `tcpip-forward` requests by
/// `ServerForwarding` when a forwarding policy is given; agent forwarding (docs/protocol.md §7.9)
/// when `agentForwarding` permits it.
public enum SSHSessionServer {
    /// Adds the SSH server handler above QNSP. Call from the channel initializer, before the
    /// handshake completes (QNSP holds the SSH banner until then), and hand the returned
    /// delegate the account once the handshake succeeds (sessions use that looked-up account:
    /// nothing here touches the password database).
    public static func install(
        on channel: Channel, switchUser: Bool, hostKey: NIOSSHPrivateKey,
        forwarding: ForwardingPolicy? = nil, subsystems: [String: [String]] = [:], agentForwarding: Bool = false,
        log: (@Sendable (String) -> Void)? = nil, onSessionStart: (@Sendable (String) -> Void)? = nil
    ) throws -> QNSPIdentityAuthDelegate {
        let auth = QNSPIdentityAuthDelegate()
        let forwarder = forwarding.map { policy in
            ServerForwarding(policy: policy, connection: channel, sessionIsRoot: {
                auth.authenticatedAccount?.uid == 0
            }, log: log, forwardingForbidden: {
                auth.authenticatedAccount?.restrictions.noPortForwarding ?? true
            })
        }
        let banner = SSHBannerRecorder()
        var configuration = SSHServerConfiguration(hostKeys: [hostKey], userAuthDelegate: auth, globalRequestDelegate: forwarder)
        configuration.transportProtectionSchemes = QNSPTunnelTransportProtection.preferred(after: configuration.transportProtectionSchemes)
        let handler = NIOSSHHandler(
            role: .server(configuration),
            allocator: channel.allocator,
            inboundChildChannelInitializer: { child, type in
                guard let account = auth.authenticatedAccount else {
                    return child.eventLoop.makeFailedFuture(SSHSessionError.unknownAccount)
                }
                switch type {
                case .session: break
                case .directTCPIP(let request):
                    guard let forwarder else { return child.eventLoop.makeFailedFuture(ForwardingRelay.ForwardingError.refusedByPolicy("forwarding is disabled")) }
                    return forwarder.serveDirect(child: child, request: request)
                case .forwardedTCPIP:
                    return child.eventLoop.makeFailedFuture(SSHSessionError.unsupportedChannelType)
                }
                return child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(ExecSessionHandler(
                        user: account, switchUser: switchUser, subsystems: subsystems, peerVersion: { banner.version },
                        agentForwarding: agentForwarding, log: log, onStart: onSessionStart))
                }
            })
        try channel.pipeline.syncOperations.addHandler(banner)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.pipeline.syncOperations.addHandler(CloseOnError(log: log))
        return auth
    }
}

/// Errors of the session layer.
public enum SSHSessionError: Error, Equatable, CustomStringConvertible {
    case unsupportedChannelType
    case execRefused
    case sessionEndedWithoutStatus
    case unknownAccount
    case innerHostKeyRefused(String)
    case authenticationFailed(tried: [String])
    /// Password login refused (after this many passwords; 0: none was given).
    case passwordRefused(attempts: Int)

    public var description: String {
        switch self {
        case .unsupportedChannelType: return "channel type not supported"
        case .execRefused: return "the server refused to run the command"
        case .sessionEndedWithoutStatus: return "the session ended without an exit status"
        case .unknownAccount: return "no such account on the server"
        case .innerHostKeyRefused(let why): return why
        case .authenticationFailed(let tried) where tried.isEmpty:
            return "the SSH server behind the qsshd bridge wants a classical key and there is none (give an OpenSSH ed25519 key with -o IdentityFile=FILE, or use OpenSSH's ssh with 'qssh tunnel' for ssh-agent keys)"
        case .authenticationFailed(let tried):
            return "the SSH server behind the qsshd bridge refused the key(s) \(tried.joined(separator: ", "))"
        case .passwordRefused(let attempts) where attempts == 0:
            return "permission denied: the server offers only password login and no password was given (BatchMode, PasswordAuthentication=no, or neither a terminal nor SSH_ASKPASS)"
        case .passwordRefused(let attempts):
            return "permission denied: the server refused the password (\(attempts) attempt\(attempts == 1 ? "" : "s"))"
        }
    }
}

/// Closes a connection whose pipeline reports an error (the error was already surfaced below);
/// optionally notes when the inner SSH user authentication succeeded.
final class CloseOnError: ChannelInboundHandler, Sendable {
    typealias InboundIn = Any
    let log: (@Sendable (String) -> Void)?
    let authenticated: NIOLockedValueBox<Bool>?
    init(log: (@Sendable (String) -> Void)? = nil, authenticated: NIOLockedValueBox<Bool>? = nil) { self.log = log; self.authenticated = authenticated }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is UserAuthSuccessEvent { authenticated?.withLockedValue { $0 = true } }
        if case .peerClosed(_, let reason)? = event as? QNSPUserEvent, !reason.isEmpty { log?("closed by the peer: \(reason)") }
        context.fireUserInboundEventTriggered(event)
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        log?("\(error)")
        context.close(promise: nil)
    }
}

/// Notes the client's SSH version line (the first line it sends) on its way to the SSH handler,
/// then steps out of the pipeline. swift-nio-ssh keeps it to itself.
final class SSHBannerRecorder: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let seen = NIOLockedValueBox<[UInt8]>([])
    private let line = NIOLockedValueBox<String?>(nil)

    /// The client's version line ("SSH-2.0-…"), once it arrived.
    var version: String? { line.withLockedValue { $0 } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        let done = seen.withLockedValue { seen -> Bool in
            seen += bytes.readableBytesView.prefix(256 - seen.count)
            // RFC 4253 §4.2: lines before the version line may come first; the version line starts with "SSH-".
            while let end = seen.firstIndex(of: 0x0A) {
                let text = String(decoding: seen[..<end], as: UTF8.self).trimmingCharacters(in: .init(charactersIn: "\r"))
                seen.removeSubrange(...end)
                if text.hasPrefix("SSH-") {
                    line.withLockedValue { $0 = PrintableText.escaped(text) }
                    return true
                }
            }
            return seen.count >= 256
        }
        context.fireChannelRead(data)
        if done { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
    }
}
