import NIOConcurrencyHelpers
import NIOCore

/// One QUIC bidirectional stream as a NIO `Channel` of its own: the handlers of a service (QNSP,
/// or plain SSH-2 for ALPN `ssh`) sit directly on the ngtcp2 stream, as they would on an accepted
/// TCP connection, with no socket in between (docs/protocol.md §8.1).
///
/// - Writes are held until `flush()`, then queued on the stream's send buffer (`QUICSendBuffer`,
///   kept without a copy until acknowledged) and sent by the endpoint; a write's promise succeeds
///   when it is queued, as a socket write's does when the kernel takes it. The channel is
///   unwritable while more than `highWater` bytes are unflushed or unacknowledged, and writable
///   again at half that.
/// - Received bytes are fired as `channelRead` when the pipeline asks (`read()`, by `autoRead` or
///   by hand); only then does the peer get credit (MAX_STREAM_DATA / MAX_DATA) for them, so a
///   pipeline that stops reading stops the sender (`QUICStreamReadState`).
/// - The peer's FIN is `ChannelEvent.inputClosed` with `allowRemoteHalfClosure`, else a close.
///   `close(mode: .output)` sends a FIN after what was written. Once both directions are closed
///   the channel closes, as a socket channel does.
/// - `close()` fails writes not yet flushed, sends a FIN after the queued bytes (which still go
///   out: the send buffer belongs to the connection) and stops delivering the stream.
///
/// Confined to the endpoint's event loop, like the connection that owns the stream.
final class QUICStreamChannel: @unchecked Sendable {
    let streamID: Int64
    private weak var owner: QUICStreamOwner?
    let eventLoop: EventLoop
    let allocator: ByteBufferAllocator
    let parent: Channel?
    private let local: SocketAddress?
    /// The QUIC peer's address (as the connection first saw it).
    private let remote: SocketAddress
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>

    private enum Lifecycle {
        /// The initializer runs; writes are held, received bytes wait.
        case initializing
        case active
        case closed
    }

    private var lifecycle = Lifecycle.initializing
    private var reads = QUICStreamReadState()
    private var writability: QUICStreamWritability
    /// Written and not yet flushed.
    private var unflushed = MarkedCircularBuffer<(ByteBuffer, EventLoopPromise<Void>?)>(initialCapacity: 4)
    private var unflushedBytes: UInt64 = 0
    private var outputClosed = false
    private var autoRead = true
    private var allowRemoteHalfClosure = false
    /// What other threads may ask (`isActive`, `isWritable`).
    private let flags = NIOLockedValueBox((active: false, writable: true))

    init(
        streamID: Int64,
        owner: QUICStreamOwner,
        eventLoop: EventLoop,
        parent: Channel?,
        localAddress: SocketAddress?,
        remoteAddress: SocketAddress,
        highWater: UInt64
    ) {
        self.streamID = streamID
        self.owner = owner
        self.eventLoop = eventLoop
        self.allocator = parent?.allocator ?? ByteBufferAllocator()
        self.parent = parent
        self.local = localAddress
        self.remote = remoteAddress
        self.closePromise = eventLoop.makePromise()
        self.writability = QUICStreamWritability(high: highWater, low: highWater / 2)
        self._pipeline = ChannelPipeline(channel: self)
    }

    // MARK: Lifecycle

    /// Runs `initializer` on the channel, then activates it (`channelRegistered`, `channelActive`,
    /// a first `read()` with `autoRead`). The future fails, and the stream is reset, if it fails.
    func start(initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        eventLoop.preconditionInEventLoop()
        let promise = eventLoop.makePromise(of: Channel.self)
        initializer(self).hop(to: eventLoop).whenComplete { result in
            switch result {
            case .success:
                guard case .initializing = self.lifecycle else {
                    promise.fail(ChannelError.ioOnClosedChannel)
                    return
                }
                self.activate()
                promise.succeed(self)
            case .failure(let error):
                self.owner?.streamFailed(self.streamID)
                self.finishClose(failingWritesWith: error)
                promise.fail(error)
            }
        }
        return promise.futureResult
    }

    private func activate() {
        lifecycle = .active
        flags.withLockedValue { $0.active = true }
        pipeline.syncOperations.fireChannelRegistered()
        pipeline.syncOperations.fireChannelActive()
        if !writability.isWritable {
            flags.withLockedValue { $0.writable = false }
            pipeline.syncOperations.fireChannelWritabilityChanged()
        }
        if autoRead { pipeline.syncOperations.read() }
        deliver(reads.next(active: true))
    }

    /// Closed here or by the network: pending writes fail, the pipeline sees `channelInactive`,
    /// its handlers are removed and `closeFuture` succeeds on the next tick.
    private func finishClose(failingWritesWith error: Error) {
        guard lifecycle != .closed else { return }
        let wasActive = lifecycle == .active
        lifecycle = .closed
        owner?.streamChannelClosed(streamID)
        owner = nil
        while let (_, promise) = unflushed.popFirst() { promise?.fail(error) }
        unflushedBytes = 0
        flags.withLockedValue { $0.active = false }
        if wasActive {
            pipeline.syncOperations.fireChannelInactive()
            pipeline.syncOperations.fireChannelUnregistered()
        }
        eventLoop.execute {
            self.removeHandlers(pipeline: self.pipeline)
            self.closePromise.succeed(())
        }
    }

    // MARK: From the connection

    /// Bytes the peer sent on the stream (in order); `fin`: its direction ends after them.
    func receive(_ bytes: ByteBuffer, fin: Bool) {
        guard lifecycle != .closed else { return }
        reads.received(bytes)
        if fin { reads.receivedFIN() }
        deliver(reads.next(active: lifecycle == .active))
    }

    /// The stream is gone (closed in both directions or reset) or the connection ended: what the
    /// peer sent is handed over, the end of input shown, and the channel closes.
    func streamEnded() {
        guard lifecycle != .closed else { return }
        reads.receivedFIN()
        if lifecycle == .active { deliver(reads.drain()) }
        finishClose(failingWritesWith: ChannelError.eof)
    }

    /// The connection acknowledged bytes (or took unflushed ones): look at writability again.
    func bufferedChanged() {
        guard lifecycle != .closed else { return }
        updateWritability()
    }

    // MARK: Delivery

    private func deliver(_ delivery: QUICStreamReadState.Delivery) {
        guard case .deliver(let buffers, let eof) = delivery else { return }
        // Credit for everything handed over, even if a handler closes the channel on the way
        // (what it did not see is discarded, and the peer must not stall on it).
        let count = buffers.reduce(0) { $0 + $1.readableBytes }
        if count > 0 {
            owner?.streamConsumed(streamID, count: count)
            owner?.flushSoon()
        }
        for b in buffers where lifecycle != .closed {
            pipeline.syncOperations.fireChannelRead(NIOAny(b))
        }
        guard lifecycle != .closed else { return }
        pipeline.syncOperations.fireChannelReadComplete()
        if eof {
            if allowRemoteHalfClosure {
                pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
                if outputClosed && lifecycle == .active { finishClose(failingWritesWith: ChannelError.eof) }
            } else if lifecycle == .active {
                close0(error: ChannelError.eof, mode: .all, promise: nil)
            }
            return
        }
        if autoRead && lifecycle == .active { pipeline.syncOperations.read() }
    }

    private var buffered: UInt64 { unflushedBytes + (owner?.streamBuffered(streamID) ?? 0) }

    private func updateWritability() {
        guard let now = writability.update(buffered: buffered) else { return }
        flags.withLockedValue { $0.writable = now }
        if lifecycle == .active { pipeline.syncOperations.fireChannelWritabilityChanged() }
    }
}

// MARK: - Channel

extension QUICStreamChannel: Channel {
    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    var pipeline: ChannelPipeline { _pipeline }
    var localAddress: SocketAddress? { local }
    var remoteAddress: SocketAddress? { remote }
    var isWritable: Bool { flags.withLockedValue { $0.writable } }
    var isActive: Bool { flags.withLockedValue { $0.active } }
    var _channelCore: ChannelCore { self }
    var syncOptions: NIOSynchronousChannelOptions? { SynchronousOptions(channel: self) }

    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        if eventLoop.inEventLoop {
            return eventLoop.makeCompletedFuture { try setOption0(option, value: value) }
        }
        return eventLoop.submit { try self.setOption0(option, value: value) }
    }

    func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        if eventLoop.inEventLoop {
            return eventLoop.makeCompletedFuture { try getOption0(option) }
        }
        return eventLoop.submit { try self.getOption0(option) }
    }

    /// `autoRead` and `allowRemoteHalfClosure`; other options (socket options) do not apply to a stream.
    fileprivate func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        eventLoop.preconditionInEventLoop()
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption:
            guard let on = value as? Bool else { throw ChannelError.operationUnsupported }
            let was = autoRead
            autoRead = on
            if on && !was && lifecycle == .active { pipeline.syncOperations.read() }
        case _ as ChannelOptions.Types.AllowRemoteHalfClosureOption:
            guard let on = value as? Bool else { throw ChannelError.operationUnsupported }
            allowRemoteHalfClosure = on
        default:
            throw ChannelError.operationUnsupported
        }
    }

    fileprivate func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        eventLoop.preconditionInEventLoop()
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption:
            guard let v = autoRead as? Option.Value else { throw ChannelError.operationUnsupported }
            return v
        case _ as ChannelOptions.Types.AllowRemoteHalfClosureOption:
            guard let v = allowRemoteHalfClosure as? Option.Value else { throw ChannelError.operationUnsupported }
            return v
        default:
            throw ChannelError.operationUnsupported
        }
    }

    private struct SynchronousOptions: NIOSynchronousChannelOptions {
        let channel: QUICStreamChannel

        func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
            try channel.setOption0(option, value: value)
        }

        func getOption<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
            try channel.getOption0(option)
        }
    }
}

// MARK: - ChannelCore

extension QUICStreamChannel: ChannelCore {
    func localAddress0() throws -> SocketAddress {
        guard let local else { throw ChannelError.unknownLocalAddress }
        return local
    }

    func remoteAddress0() throws -> SocketAddress {
        remote
    }

    func register0(promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }

    func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard lifecycle != .closed else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        guard !outputClosed else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        let bytes: ByteBuffer
        if let b = tryUnwrapData(data, as: ByteBuffer.self) {
            bytes = b
        } else if case .byteBuffer(let b)? = tryUnwrapData(data, as: IOData.self) {
            bytes = b
        } else {
            promise?.fail(ChannelError.operationUnsupported)  // file regions need a file descriptor
            return
        }
        unflushed.append((bytes, promise))
        unflushedBytes += UInt64(bytes.readableBytes)
        updateWritability()
    }

    func flush0() {
        unflushed.mark()
        guard lifecycle != .closed, let owner else { return }
        var wrote = false
        while unflushed.hasMark, let (bytes, promise) = unflushed.popFirst() {
            unflushedBytes -= UInt64(bytes.readableBytes)
            owner.streamWrite(streamID, bytes)
            wrote = true
            promise?.succeed(())
        }
        if wrote { owner.flushSoon() }
    }

    func read0() {
        guard lifecycle != .closed else { return }
        reads.readRequested()
        deliver(reads.next(active: lifecycle == .active))
    }

    func close0(error: Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard lifecycle != .closed else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        switch mode {
        case .input:
            promise?.fail(ChannelError.operationUnsupported)
        case .output:
            guard !outputClosed else {
                promise?.fail(ChannelError.outputClosed)
                return
            }
            flush0()
            outputClosed = true
            owner?.streamFinish(streamID)
            owner?.flushSoon()
            promise?.succeed(())
            pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.outputClosed)
            if reads.finDelivered { finishClose(failingWritesWith: ChannelError.eof) }
        case .all:
            if !outputClosed {
                // The unflushed writes fail (as on a socket); what was flushed is sent, then the FIN.
                while let (_, pending) = unflushed.popFirst() { pending?.fail(ChannelError.ioOnClosedChannel) }
                unflushedBytes = 0
                outputClosed = true
                owner?.streamFinish(streamID)
                owner?.flushSoon()
            }
            finishClose(failingWritesWith: error)
            if let promise { closePromise.futureResult.cascade(to: promise) }
        }
    }

    func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func channelRead0(_ data: NIOAny) {}
    func errorCaught0(error: Error) {}
}
