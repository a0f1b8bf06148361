import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSPQUIC

/// `qssh tunnel --plain-ssh`: stdin and stdout joined to one QUIC stream with ALPN `ssh`, which
/// `qsshd --bridge` hands to its sshd as plain SSH-2 (docs/protocol.md §8.12). Nothing here
/// authenticates anyone: the SSH client on the other side of the pipe checks sshd's host key.
enum PlainSSHTunnel {
    /// Runs until the stream ends; 0, or 1 when writing to stdout failed. Throws when the
    /// connection cannot be made or is lost.
    static func run(host: String, port: Int, verbose: Bool) throws -> Int32 {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // Not shut down: the stdin thread may touch the channel until the process exits.
        let stdoutFailed = NIOLockedValueBox(false)
        let lost = NIOLockedValueBox<String?>(nil)
        let stream: Channel
        do {
            stream = try QUICStreamClient.connect(group: group, host: host, port: port, alpn: QUICServiceRegistry.ssh) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
                    try channel.pipeline.syncOperations.addHandler(StdoutWriter(failure: stdoutFailed, connectionError: lost))
                }
            }.wait()
        } catch QUICError.noApplicationProtocol {
            throw ToolError("\(host) port \(port) has no plain SSH service over QUIC (ALPN ssh: qsshd serves it only with --bridge)")
        } catch {
            throw ToolError("connect to \(host) port \(port) over QUIC (ALPN ssh): \(ConnectErrorText.describe(error))")
        }
        if verbose { Terminal.warn("qssh tunnel: plain SSH-2 to \(host) port \(port) over QUIC (UDP, ALPN ssh; no QNSP)") }
        StdinPump.start(into: stream)
        try? stream.closeFuture.wait()
        if let why = lost.withLockedValue({ $0 }) { throw ToolError("connection to \(host) lost: \(why)") }
        return stdoutFailed.withLockedValue { $0 } ? 1 : 0
    }
}
