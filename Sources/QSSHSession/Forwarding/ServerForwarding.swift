import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSH

/// The server's side of forwarding for one SSH connection: serves `direct-tcpip` channels
/// (connecting where the client asks, if the policy allows) and `tcpip-forward` requests
/// (listening and opening a `forwarded-tcpip` channel per accepted connection). Listeners
/// close with the connection or on `cancel-tcpip-forward`.
public final class ServerForwarding: GlobalRequestDelegate, Sendable {
    private let policy: ForwardingPolicy
    private let connection: Channel
    private let sessionIsRoot: @Sendable () -> Bool
    private let log: (@Sendable (String) -> Void)?
    private let listeners = NIOLockedValueBox<[String: Channel]>([:])

    /// True when the login may not forward at all (a certificate's no-port-forwarding).
    private let forwardingForbidden: @Sendable () -> Bool

    public init(
        policy: ForwardingPolicy, connection: Channel, sessionIsRoot: @escaping @Sendable () -> Bool, log: (@Sendable (String) -> Void)?,
        forwardingForbidden: @escaping @Sendable () -> Bool = { false }
    ) {
        self.policy = policy; self.connection = connection; self.sessionIsRoot = sessionIsRoot; self.log = log
        self.forwardingForbidden = forwardingForbidden
        let listeners = self.listeners
        connection.closeFuture.whenComplete { _ in
            for l in listeners.withLockedValue({ d in defer { d = [:] }; return Array(d.values) }) { l.close(promise: nil) }
        }
    }

    /// Serves an inbound `direct-tcpip` channel.
    public func serveDirect(child: Channel, request: SSHChannelType.DirectTCPIP) -> EventLoopFuture<Void> {
        if forwardingForbidden() {
            log?("refused direct-tcpip: port forwarding is not permitted for this login")
            return child.eventLoop.makeFailedFuture(ForwardingRelay.ForwardingError.refusedByPolicy("port forwarding is not permitted for this login"))
        }
        if let why = policy.refusalToOpen(host: request.targetHost, port: request.targetPort) {
            log?("refused direct-tcpip: \(why)")
            return child.eventLoop.makeFailedFuture(ForwardingRelay.ForwardingError.refusedByPolicy(why))
        }
        let log = self.log
        return ForwardingRelay.serveInbound(child: child, host: request.targetHost, port: request.targetPort).flatMapErrorThrowing { error in
            log?("direct-tcpip: \(error)")
            throw error
        }
    }

    public func tcpForwardingRequest(
        _ request: GlobalRequest.TCPForwardingRequest, handler: NIOSSHHandler, promise: EventLoopPromise<GlobalRequest.TCPForwardingResponse>
    ) {
        switch request {
        case .listen(let host, let port):
            // swift-nio-ssh passes the 32-bit wire value; getaddrinfo would wrap 65616 to 80.
            guard (0...65535).contains(port) else {
                log?("refused tcpip-forward \(host):\(port): not a port number")
                return promise.fail(ForwardingRelay.ForwardingError.refusedByPolicy("\(port) is not a port number"))
            }
            if AgentForwarding.isReserved(host: host) {
                log?("refused tcpip-forward \(host):\(port): the address is reserved for agent forwarding")
                return promise.fail(ForwardingRelay.ForwardingError.refusedByPolicy("\(host) is reserved for agent forwarding"))
            }
            if forwardingForbidden() {
                log?("refused tcpip-forward \(host):\(port): port forwarding is not permitted for this login")
                return promise.fail(ForwardingRelay.ForwardingError.refusedByPolicy("port forwarding is not permitted for this login"))
            }
            if let why = policy.refusalToListen(host: host, port: port, sessionIsRoot: sessionIsRoot()) {
                log?("refused tcpip-forward \(host):\(port): \(why)")
                return promise.fail(ForwardingRelay.ForwardingError.refusedByPolicy(why))
            }
            let connection = self.connection
            let listeners = self.listeners
            let log = self.log
            let bound = NIOLockedValueBox(port)
            ServerBootstrap(group: connection.eventLoop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { tcp in
                    ForwardingRelay.enableKeepalive(tcp)
                    let type = SSHChannelType.forwardedTCPIP(.init(
                        listeningHost: host, listeningPort: bound.withLockedValue { $0 },
                        originatorAddress: ForwardingRelay.originator(tcp.remoteAddress)))
                    return ForwardingRelay.openChannel(on: connection, type: type, joining: tcp).map { _ in }.flatMapErrorThrowing { error in
                        log?("forwarded-tcpip for port \(port) refused by the client: \(error)")
                        throw error
                    }
                }
                .bind(host: policy.listenAddress(requested: host), port: port)
                .whenComplete { result in
                    switch result {
                    case .success(let listener):
                        let actual = listener.localAddress?.port ?? port
                        bound.withLockedValue { $0 = actual }
                        // Keyed by the port actually bound: two "-R 0" forwards get two ports, and a
                        // cancel names the bound port.
                        let stale = listeners.withLockedValue { d -> Channel? in
                            defer { d["\(host):\(actual)"] = listener }
                            return d["\(host):\(actual)"]
                        }
                        stale?.close(promise: nil)
                        if !connection.isActive { listener.close(promise: nil) }
                        promise.succeed(.init(boundPort: port == 0 ? actual : nil))
                    case .failure(let error):
                        log?("tcpip-forward \(host):\(port): \(error)")
                        promise.fail(error)
                    }
                }
        case .cancel(let host, let port):
            if let listener = listeners.withLockedValue({ $0.removeValue(forKey: "\(host):\(port)") }) {
                listener.close(promise: nil)
                promise.succeed(.init(boundPort: nil))
            } else {
                promise.fail(ForwardingRelay.ForwardingError.refusedByPolicy("no forwarding on \(host):\(port) to cancel"))
            }
        }
    }
}
