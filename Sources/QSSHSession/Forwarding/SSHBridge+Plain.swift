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
        join(channel, host: host, port: port) { outcome in
            switch outcome {
            case .joined: log?("plain SSH stream (QUIC ALPN ssh) from \(peer) bridged to \(host) port \(port)")
            case .failed(let error): log?("plain SSH stream from \(peer): \(error); closing it")
            }
        }
    }
}
