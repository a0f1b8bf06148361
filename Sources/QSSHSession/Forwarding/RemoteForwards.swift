import NIOConcurrencyHelpers
import NIOCore
import NIOSSH

/// The client's side of `-R`: asks the server to listen (`tcpip-forward`) and serves the
/// `forwarded-tcpip` channels the server opens by connecting to the local target.
public final class RemoteForwards: Sendable {
    private let targets = NIOLockedValueBox<[Int: (host: String, port: Int)]>([:])
    private let log: (@Sendable (String) -> Void)?

    public init(log: (@Sendable (String) -> Void)? = nil) { self.log = log }

    /// Asks the server to listen for `spec`; the future gives the port the server bound.
    /// Call on the connection's event loop or from any thread (it hops).
    public func request(_ spec: ForwardSpec, on connection: Channel) -> EventLoopFuture<Int> {
        guard let host = spec.targetHost else {
            return connection.eventLoop.makeFailedFuture(ForwardingRelay.ForwardingError.refusedByPolicy("-R needs a target"))
        }
        if let bind = spec.bindHost, AgentForwarding.isReserved(host: bind) {
            return connection.eventLoop.makeFailedFuture(ForwardingRelay.ForwardingError.refusedByPolicy("\(bind) is reserved for agent forwarding"))
        }
        let bind: String
        switch spec.bindHost {
        case nil: bind = "localhost"
        case "*"?: bind = ""
        case let h?: bind = h
        }
        return connection.eventLoop.flatSubmit {
            let promise = connection.eventLoop.makePromise(of: GlobalRequest.TCPForwardingResponse?.self)
            guard let ssh = try? connection.pipeline.syncOperations.handler(type: NIOSSHHandler.self) else {
                promise.fail(ForwardingRelay.ForwardingError.noSSHHandler)
                return promise.futureResult.map { _ in 0 }
            }
            ssh.sendTCPForwardingRequest(.listen(host: bind, port: spec.bindPort), promise: promise)
            return promise.futureResult.map { response in
                let port = response?.boundPort ?? spec.bindPort
                self.targets.withLockedValue { $0[port] = (host, spec.targetPort) }
                return port
            }
        }
    }

    /// The inbound channel initializer for the client's SSH handler: serves `forwarded-tcpip`
    /// channels for ports this client asked for and refuses everything else.
    public func initializer(child: Channel, type: SSHChannelType) -> EventLoopFuture<Void> {
        guard case .forwardedTCPIP(let info) = type, !AgentForwarding.isReserved(host: info.listeningHost) else {
            return child.eventLoop.makeFailedFuture(SSHSessionError.unsupportedChannelType)
        }
        guard let target = targets.withLockedValue({ $0[info.listeningPort] }) else {
            log?("server opened a forwarded channel for port \(info.listeningPort), which was not requested")
            return child.eventLoop.makeFailedFuture(SSHSessionError.unsupportedChannelType)
        }
        let log = self.log
        return ForwardingRelay.serveInbound(child: child, host: target.host, port: target.port).flatMapErrorThrowing { error in
            log?("remote forward from port \(info.listeningPort): \(error)")
            throw error
        }
    }
}
