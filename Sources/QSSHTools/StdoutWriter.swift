import Foundation
import NIOConcurrencyHelpers
import NIOCore
import QSSHSession

#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif

/// Writes the tunnel's plaintext to a file descriptor with blocking writes (stdout may be
/// a regular file, which NIO cannot poll). Blocking is the backpressure: a slow consumer
/// stops the event loop from reading the socket.
public final class StdoutWriter: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    private let fd: CInt
    private let failure: NIOLockedValueBox<Bool>
    private let connectionError: NIOLockedValueBox<String?>?
    private var failed = false

    /// - Parameters:
    ///   - failure: set to true if a write to `fd` fails.
    ///   - connectionError: told the first error of the connection (e.g. a truncated stream), so
    ///     that the tool can report it instead of ending as if the stream had ended cleanly.
    public init(fd: CInt = 1, failure: NIOLockedValueBox<Bool>, connectionError: NIOLockedValueBox<String?>? = nil) {
        self.fd = fd
        self.failure = failure
        self.connectionError = connectionError
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        connectionError?.withLockedValue { if $0 == nil { $0 = ConnectErrorText.describe(error) } }
        context.close(promise: nil)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard !failed else { return }
        failed = !BlockingIO.writeAll(fd, buffer)
        if failed {
            failure.withLockedValue { $0 = true }
            context.close(promise: nil)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent { close(fd) }
        context.fireUserInboundEventTriggered(event)
    }
}

@available(*, unavailable)
extension StdoutWriter: Sendable {}

/// Reads a file descriptor on its own thread and writes it into a channel, waiting for
/// each write to complete (backpressure); half-closes the channel at end of file.
public enum StdinPump {
    public static func start(fd: CInt = 0, into channel: Channel, chunkSize: Int = 64 * 1024) {
        BlockingIO.pump(fd, into: channel, chunkSize: chunkSize) { $0 }
    }
}
