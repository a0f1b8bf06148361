import NIOCore
import QNSP
import QNSPNIO

/// qsshd's bridge mode: once the QNSP handshake succeeds, the tunnel's plaintext (the client's
/// SSH-2 stream) is joined to a TCP connection to a classical sshd, which then runs the SSH
/// session itself. The wire carries only QNSP; sshd sees a local connection.
public enum SSHBridge {
    /// Most bytes held from the client while the connection to sshd is being made.
    public static let maxHeldBytes = 1 << 20

    /// Installs the bridge on a server channel (call in the child initializer, before the handshake).
    public static func install(
        on channel: Channel, handshake: EventLoopFuture<QNSPSessionInfo>, host: String, port: Int, log: (@Sendable (String) -> Void)?
    ) throws {
        try channel.pipeline.syncOperations.addHandler(HoldingHandler())
        handshake.whenSuccess { info in
            join(channel, host: host, port: port) { outcome in
                switch outcome {
                case .joined: log?("bridged \(info.username) to \(host) port \(port)")
                case .failed(let error): log?("bridge for \(info.username): \(error); closing the connection")
                }
            }
        }
    }

    /// What became of a bridge's connection to sshd.
    enum JoinOutcome {
        case joined
        case failed(any Error)
    }

    /// Connects to sshd and glues the TCP connection to `channel`, whose bytes a `HoldingHandler`
    /// holds until then. Closes both when anything fails, and closes the TCP connection when
    /// `channel` went away while the connect was pending (nothing else would close it). `report` is
    /// not called in that last case.
    static func join(_ channel: Channel, host: String, port: Int, report: @escaping @Sendable (JoinOutcome) -> Void) {
        ForwardingRelay.connect(host: host, port: port, on: channel.eventLoop) { _ in channel.eventLoop.makeSucceededVoidFuture() }
            .whenComplete { result in
                switch result {
                case .success(let tcp):
                    guard channel.isActive else {
                        tcp.close(promise: nil)
                        return
                    }
                    do {
                        let holding = try channel.pipeline.syncOperations.handler(type: HoldingHandler.self)
                        let (a, b) = GlueHandler.matchedPair()
                        try channel.pipeline.syncOperations.addHandler(a)
                        try tcp.pipeline.syncOperations.addHandler(b)
                        holding.release()
                        report(.joined)
                    } catch {
                        tcp.close(promise: nil)
                        channel.close(promise: nil)
                        report(.failed(error))
                    }
                case .failure(let error):
                    report(.failed(error))
                    channel.close(promise: nil)
                }
            }
    }

    /// Holds the client's bytes (and its half-close) until the bridge is joined, then replays
    /// them and leaves the pipeline.
    final class HoldingHandler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        private var held: [ByteBuffer] = []
        private var heldBytes = 0
        private var inputClosed = false
        private var context: ChannelHandlerContext?

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }
        func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            heldBytes += buffer.readableBytes
            guard heldBytes <= SSHBridge.maxHeldBytes else { return context.close(promise: nil) }
            held.append(buffer)
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .inputClosed? = event as? ChannelEvent { inputClosed = true } else { context.fireUserInboundEventTriggered(event) }
        }

        func release() {
            guard let context else { return }
            for b in held { context.fireChannelRead(wrapInboundOut(b)) }
            held = []
            context.fireChannelReadComplete()
            if inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}

@available(*, unavailable)
extension SSHBridge.HoldingHandler: Sendable {}
