import NIOCore
import QNSPNIO

extension SSHBridge {
    /// The `ssh` QUIC service of `qsshd --bridge` (docs/protocol.md §8): the stream carries plain
    /// SSH-2 from the client, with no QNSP, and is joined at once to a TCP connection to the
    /// bridged sshd. Nothing in qsshd authenticates it: sshd's own host-key check and key exchange
    /// are its protection. Call from the stream's initializer; bytes that come before the TCP
    /// connection is made are held (up to `maxHeldBytes`).
    public static func installPlain(
        on channel: Channel, host: String, port: Int, peer: String, log: (@Sendable (String) -> Void)?
    ) throws {
        try channel.pipeline.syncOperations.addHandler(HoldingHandler())
        ForwardingRelay.connect(host: host, port: port, on: channel.eventLoop) { _ in channel.eventLoop.makeSucceededVoidFuture() }
            .whenComplete { result in
                switch result {
                case .success(let tcp):
                    // The stream may have closed while the connect was pending: nothing would ever
                    // close this TCP connection then.
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
                        log?("plain SSH stream (QUIC ALPN ssh) from \(peer) bridged to \(host) port \(port)")
                    } catch {
                        tcp.close(promise: nil)
                        channel.close(promise: nil)
                    }
                case .failure(let error):
                    log?("plain SSH stream from \(peer): \(error); closing it")
                    channel.close(promise: nil)
                }
            }
    }
}
