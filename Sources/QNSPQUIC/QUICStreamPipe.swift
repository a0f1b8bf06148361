import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One QUIC bidirectional stream exposed as a byte pipe: a connected socket pair whose user end
/// is an ordinary NIO `Channel` (QNSP runs on it exactly as over TCP) and whose pump end moves
/// bytes between the socket and the QUIC stream. Flow-control credit is given back to the peer
/// only when the pump's write into the socket completes, so a slow consumer slows the sender.
/// Confined to the endpoint's event loop.
final class QUICStreamPipe: @unchecked Sendable {
    let streamID: Int64
    private(set) var pump: Channel?
    private var pending: [ByteBuffer] = []
    private var finPending = false
    private var closed = false
    /// The last write into the socket: the output is closed only after it, because NIO drops
    /// writes still queued when a channel closes (received data would be lost).
    private var lastWrite: EventLoopFuture<Void>?
    var paused = false
    weak var owner: QUICEndpointConnection?

    init(streamID: Int64, owner: QUICEndpointConnection) {
        self.streamID = streamID
        self.owner = owner
    }

    /// Makes the socket pair and both channels on `loop`.
    func start(
        loop: EventLoop,
        userInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<Channel> {
        var fds: [Int32] = [-1, -1]
        #if canImport(Glibc)
        let kind = Int32(SOCK_STREAM.rawValue)
        #else
        let kind = SOCK_STREAM
        #endif
        guard socketpair(AF_UNIX, kind, 0, &fds) == 0 else {
            return loop.makeFailedFuture(QUICError.invalidArgument("socketpair failed (errno \(errno))"))
        }
        let userFD = fds[0]
        let pumpFD = fds[1]
        let user = ClientBootstrap(group: loop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer(userInitializer)
            .withConnectedSocket(userFD)
        let pumpHandler = QUICStreamPumpHandler(pipe: self)
        let pumpFuture = ClientBootstrap(group: loop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(pumpHandler) }
            }
            .withConnectedSocket(pumpFD)
        pumpFuture.whenComplete { result in
            switch result {
            case .success(let ch):
                self.pump = ch
                self.drainPending()
                if self.closed { self.closeAfterLastWrite(ch) }
            case .failure:
                self.owner?.pipeFailed(self)
            }
        }
        return user
    }

    /// Bytes from the peer: into the socket; credit back once written.
    func deliver(_ bytes: ByteBuffer, fin: Bool) {
        guard !closed else { return }
        if bytes.readableBytes > 0 { pending.append(bytes) }
        if fin { finPending = true }
        drainPending()
    }

    private func drainPending() {
        guard let pump else { return }
        let chunks = pending
        pending.removeAll()
        for b in chunks {
            let n = b.readableBytes
            let written = pump.write(b)
            written.whenSuccess { [weak self] in
                guard let self, let owner = self.owner else { return }
                owner.consumed(stream: self.streamID, count: n)
            }
            lastWrite = written
        }
        if !chunks.isEmpty { pump.flush() }
        if finPending {
            finPending = false
            afterLastWrite { pump.close(mode: .output, promise: nil) }
        }
    }

    private func afterLastWrite(_ body: @escaping @Sendable () -> Void) {
        if let lastWrite { lastWrite.whenComplete { _ in body() } } else { body() }
    }

    /// Closes the pump once what the peer sent is in the socket (the user end still reads it,
    /// then sees end of file), or after 10 s if the user end does not read.
    private func closeAfterLastWrite(_ pump: Channel) {
        afterLastWrite { pump.close(promise: nil) }
        pump.eventLoop.scheduleTask(in: .seconds(10)) { pump.close(promise: nil) }
    }

    /// The QUIC stream or connection is gone: close both ends once the data already received
    /// has been handed to the user end (a stream that closes normally ends right after its
    /// last bytes; dropping the queued ones lost the tail of transfers under load).
    func close() {
        guard !closed else { return }
        closed = true
        guard let pump else { return }  // not started yet: start() closes it after draining
        drainPending()
        closeAfterLastWrite(pump)
    }

    func setPaused(_ p: Bool) {
        guard p != paused, let pump else { return }
        paused = p
        pump.setOption(.autoRead, value: !p).whenComplete { _ in }
        if !p { pump.read() }
    }
}
