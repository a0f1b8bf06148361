import NIOCore
import NIOConcurrencyHelpers
import NIOSSH
import QSSHSession

/// `qssh -W host:port`: a `direct-tcpip` channel joined to stdin and stdout, the building
/// block of ProxyCommand and `-J`.
enum StdioForward {
    /// - Parameter connectionError: the connection's first error, if any (reported instead of a clean end).
    static func run(on connection: Channel, host: String, port: Int, connectionError: NIOLockedValueBox<String?>) throws {
        let failed = NIOLockedValueBox(false)
        let type = SSHChannelType.directTCPIP(.init(targetHost: host, targetPort: port, originatorAddress: ForwardingRelay.originator(nil)))
        let opened = SSHSessionClient.createChannel(on: connection, type: type) { child in
            try child.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            try child.pipeline.syncOperations.addHandlers([SSHChannelBytesCodec(), StdoutWriter(failure: failed)])
        }
        let channel: Channel
        do {
            channel = try opened.wait()
        } catch {
            try? connection.close().wait()  // an orderly QNSP close, so the server does not log a lost connection
            throw ToolError("-W \(host):\(port): \(ForwardingRelay.describe(error))")
        }
        StdinPump.start(into: channel)
        try? channel.closeFuture.wait()
        try? connection.close().wait()
        if let why = connectionError.withLockedValue({ $0 }) { throw ToolError("connection lost: \(why)") }
        if failed.withLockedValue({ $0 }) { throw ToolError("writing to stdout failed") }
    }
}
