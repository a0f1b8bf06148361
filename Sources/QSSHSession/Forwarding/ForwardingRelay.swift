import NIOCore
import NIOPosix
import NIOSSH
import QNSPNIO

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The building blocks of port forwarding: open a `direct-tcpip`/`forwarded-tcpip` channel,
/// connect a TCP socket, and join an SSH channel and a TCP channel into one byte pipe with
/// backpressure and half-close propagation. Everything runs on the SSH connection's event loop.
public enum ForwardingRelay {
    /// Errors of forwarding.
    public enum ForwardingError: Error, CustomStringConvertible {
        case noSSHHandler
        case refusedByPolicy(String)
        case connectFailed(String, Int, String)

        public var description: String {
            switch self {
            case .noSSHHandler: return "the connection has no SSH session"
            case .refusedByPolicy(let why): return "forwarding refused: \(why)"
            case .connectFailed(let host, let port, let why): return "connect to \(host) port \(port) failed: \(why)"
            }
        }
    }

    /// Prepares an SSH child channel for relaying and joins it with `tcp` (same event loop).
    public static func join(sshChild: Channel, tcp: Channel) throws {
        let (a, b) = GlueHandler.matchedPair()
        try sshChild.pipeline.syncOperations.addHandlers([SSHChannelBytesCodec(), a])
        try tcp.pipeline.syncOperations.addHandler(b)
    }

    /// Opens an SSH channel of `type` on the connection `connection` (QNSP channel with the SSH
    /// handler) and joins it with `tcp`. Call on the connection's event loop.
    public static func openChannel(on connection: Channel, type: SSHChannelType, joining tcp: Channel) -> EventLoopFuture<Channel> {
        SSHSessionClient.createChannel(on: connection, type: type) { child in
            try child.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            try join(sshChild: child, tcp: tcp)
        }
    }

    /// Connects to `host:port` from `eventLoop`, with half-closes allowed and TCP keepalive on
    /// (`enableKeepalive`: a dead peer is noticed within about 90 s and the relay closed).
    public static func connect(host: String, port: Int, on eventLoop: EventLoop, initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        ClientBootstrap(group: eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(15))
            .channelInitializer { channel in
                enableKeepalive(channel)
                return initializer(channel)
            }
            .connect(host: host, port: port)
            .flatMapErrorThrowing { error in throw ForwardingError.connectFailed(host, port, "\(error)") }
    }

    /// TCP keepalive on a forwarded socket: probes after 60 s of silence, every 10 s, 3 misses
    /// (Linux; elsewhere the system's timers), so a vanished peer ends the relay.
    public static func enableKeepalive(_ channel: Channel) {
        guard let options = channel.syncOptions else { return }
        try? options.setOption(.socketOption(.so_keepalive), value: 1)
        #if os(Linux)
        try? options.setOption(ChannelOptions.Types.SocketOption(level: .init(IPPROTO_TCP), name: .init(TCP_KEEPIDLE)), value: 60)
        try? options.setOption(ChannelOptions.Types.SocketOption(level: .init(IPPROTO_TCP), name: .init(TCP_KEEPINTVL)), value: 10)
        try? options.setOption(ChannelOptions.Types.SocketOption(level: .init(IPPROTO_TCP), name: .init(TCP_KEEPCNT)), value: 3)
        #endif
    }

    /// Serves an inbound SSH channel by connecting to `host:port` and relaying; the returned
    /// future fails (the peer sees the channel refused) when the connection fails.
    public static func serveInbound(child: Channel, host: String, port: Int) -> EventLoopFuture<Void> {
        do {
            try child.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        } catch {
            return child.eventLoop.makeFailedFuture(error)
        }
        // Until the target answers, the SSH side must not be read (nothing would take the bytes).
        return connect(host: host, port: port, on: child.eventLoop) { _ in child.eventLoop.makeSucceededVoidFuture() }
            .flatMapThrowing { tcp in
                do { try join(sshChild: child, tcp: tcp) } catch {
                    tcp.close(promise: nil)  // the SSH side went away while connecting
                    throw error
                }
            }
    }

    /// A message for a forwarding error as the client sees it. The server gives no reason
    /// (swift-nio-ssh sends only "connect failed"), so the text names both causes.
    public static func describe(_ error: Error) -> String {
        if let e = error as? NIOSSHError {
            switch e.type {
            case .channelSetupRejected: return "the server refused the channel (connect failed or not permitted by its policy)"
            case .globalRequestRefused: return "the server refused (not permitted by its policy, or the port is in use)"
            default: break
            }
        }
        return "\(error)"
    }

    /// A placeholder originator address when the real one is unknown.
    public static func originator(_ address: SocketAddress?) -> SocketAddress {
        if let address, address.ipAddress != nil { return address }
        var loopback = sockaddr_in()
        loopback.sin_family = sa_family_t(AF_INET)
        loopback.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return SocketAddress(loopback, host: "127.0.0.1")
    }
}
