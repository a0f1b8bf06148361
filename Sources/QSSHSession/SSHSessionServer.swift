import NIOCore
import NIOSSH

/// Runs the SSH-2 connection protocol (swift-nio-ssh, server role) on an established QNSP
/// channel: inner user auth bound to the QNSP identity, session channels served by
/// `ExecSessionHandler`. Other channel types are refused.
public enum SSHSessionServer {
    /// Adds the SSH server handler above QNSP. Call from the channel initializer, before the
    /// handshake completes (QNSP holds the SSH banner until then), and hand the returned
    /// delegate the user name once the handshake succeeds.
    public static func install(
        on channel: Channel, sessionUser: @escaping @Sendable (String) -> SessionUser?, switchUser: Bool, hostKey: NIOSSHPrivateKey,
        log: (@Sendable (String) -> Void)? = nil, onSessionStart: (@Sendable (String) -> Void)? = nil
    ) throws -> QNSPIdentityAuthDelegate {
        let auth = QNSPIdentityAuthDelegate()
        let handler = NIOSSHHandler(
            role: .server(.init(hostKeys: [hostKey], userAuthDelegate: auth)),
            allocator: channel.allocator,
            inboundChildChannelInitializer: { child, type in
                guard case .session = type else {
                    return child.eventLoop.makeFailedFuture(SSHSessionError.unsupportedChannelType)
                }
                guard let name = auth.authenticatedUser, let account = sessionUser(name) else {
                    return child.eventLoop.makeFailedFuture(SSHSessionError.unknownAccount)
                }
                return child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(ExecSessionHandler(user: account, switchUser: switchUser, onStart: onSessionStart))
                }
            })
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

    public var description: String {
        switch self {
        case .unsupportedChannelType: return "channel type not supported"
        case .execRefused: return "the server refused to run the command"
        case .sessionEndedWithoutStatus: return "the session ended without an exit status"
        case .unknownAccount: return "no such account on the server"
        }
    }
}

/// Closes a connection whose pipeline reports an error (the error was already surfaced below).
final class CloseOnError: ChannelInboundHandler, Sendable {
    typealias InboundIn = Any
    let log: (@Sendable (String) -> Void)?
    init(log: (@Sendable (String) -> Void)? = nil) { self.log = log }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        log?("\(error)")
        context.close(promise: nil)
    }
}
