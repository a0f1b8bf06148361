import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import QNSPQUIC
import Testing

/// Records what a `QUICStreamChannel` asks of its connection. Confined to the test's event loop.
final class RecordingStreamOwner: QUICStreamOwner, @unchecked Sendable {
    var written: [UInt8] = []
    var finished = false
    var credit = 0
    var buffered: UInt64 = 0
    var channelClosed = false
    var failed = false

    func streamWrite(_ id: Int64, _ bytes: ByteBuffer) {
        written += bytes.readableBytesView
        buffered += UInt64(bytes.readableBytes)
    }
    func streamFinish(_ id: Int64) { finished = true }
    func streamConsumed(_ id: Int64, count: Int) { credit += count }
    func streamBuffered(_ id: Int64) -> UInt64 { buffered }
    func streamChannelClosed(_ id: Int64) { channelClosed = true }
    func streamFailed(_ id: Int64) { failed = true }
    func flushSoon() {}
}

/// What the pipeline of a stream channel saw. Confined to the test's event loop.
final class StreamEventRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var received: [UInt8] = []
    var reads = 0
    var inputClosed = false
    var inactive = false
    var writabilityChanges: [Bool] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reads += 1
        received += unwrapInboundIn(data).readableBytesView
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent { inputClosed = true }
    }
    func channelInactive(context: ChannelHandlerContext) { inactive = true }
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writabilityChanges.append(context.channel.isWritable)
    }
}

/// `QUICStreamChannel` against a recording owner, on one real event loop (no QUIC underneath):
/// credit only for what the pipeline took, half-closure, close with writes pending, writability.
@Suite("QUIC stream channel")
struct QUICStreamChannelTests {
    /// A started channel on `loop` with a recorder in its pipeline.
    static func make(
        loop: EventLoop,
        owner: RecordingStreamOwner,
        autoRead: Bool,
        halfClosure: Bool = false,
        highWater: UInt64 = 1 << 20
    ) throws -> (QUICStreamChannel, StreamEventRecorder) {
        let recorder = StreamEventRecorder()
        let channel = try loop.submit {
            QUICStreamChannel(
                streamID: 0,
                owner: owner,
                eventLoop: loop,
                parent: nil,
                localAddress: nil,
                remoteAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 4433),
                highWater: highWater
            )
        }.wait()
        _ = try loop.flatSubmit {
            channel.start { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.syncOptions?.setOption(.autoRead, value: autoRead)
                    try ch.syncOptions?.setOption(.allowRemoteHalfClosure, value: halfClosure)
                    try ch.pipeline.syncOperations.addHandler(recorder)
                }
            }
        }.wait()
        return (channel, recorder)
    }

    static func bytes(_ n: Int, _ value: UInt8 = 0x61) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: n)
        b.writeRepeatingByte(value, count: n)
        return b
    }

    @Test("a pipeline that does not read gets nothing and the peer no credit; read() hands over all and credits it")
    func backpressure() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let owner = RecordingStreamOwner()
        let (channel, recorder) = try Self.make(loop: loop, owner: owner, autoRead: false)
        try loop.submit {
            channel.receive(Self.bytes(1000), fin: false)
            channel.receive(Self.bytes(500), fin: false)
        }.wait()
        #expect(try loop.submit { recorder.reads }.wait() == 0)
        #expect(try loop.submit { owner.credit }.wait() == 0)
        try loop.submit { channel.read() }.wait()
        #expect(try loop.submit { recorder.received.count }.wait() == 1500)
        #expect(try loop.submit { owner.credit }.wait() == 1500)
        // The read was satisfied: the next bytes wait for the next read().
        try loop.submit { channel.receive(Self.bytes(200), fin: false) }.wait()
        #expect(try loop.submit { owner.credit }.wait() == 1500)
        try loop.submit { channel.read() }.wait()
        #expect(try loop.submit { owner.credit }.wait() == 1700)
    }

    @Test("with autoRead, bytes are handed over and credited as they come")
    func autoRead() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let owner = RecordingStreamOwner()
        let (channel, recorder) = try Self.make(loop: loop, owner: owner, autoRead: true)
        try loop.submit { channel.receive(Self.bytes(300), fin: false) }.wait()
        try loop.submit { channel.receive(Self.bytes(400), fin: false) }.wait()
        #expect(try loop.submit { recorder.received.count }.wait() == 700)
        #expect(try loop.submit { owner.credit }.wait() == 700)
    }

    @Test("bytes that came before the initializer finished are delivered once the channel is active")
    func bytesBeforeActive() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let owner = RecordingStreamOwner()
        let recorder = StreamEventRecorder()
        let gate = loop.makePromise(of: Void.self)
        let channel = try loop.submit {
            QUICStreamChannel(
                streamID: 4, owner: owner, eventLoop: loop, parent: nil, localAddress: nil,
                remoteAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 1), highWater: 1 << 20)
        }.wait()
        let started = try loop.submit {
            channel.start { ch in
                gate.futureResult.flatMapThrowing { try ch.pipeline.syncOperations.addHandler(recorder) }
            }
        }.wait()
        try loop.submit { channel.receive(Self.bytes(10), fin: false) }.wait()
        #expect(try loop.submit { owner.credit }.wait() == 0)
        gate.succeed(())
        _ = try started.wait()
        #expect(try loop.submit { recorder.received.count }.wait() == 10)
        #expect(try loop.submit { owner.credit }.wait() == 10)
    }

    @Test("a FIN is inputClosed with half-closure; closing the output then sends the FIN and closes the channel")
    func halfClose() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let owner = RecordingStreamOwner()
        let (channel, recorder) = try Self.make(loop: loop, owner: owner, autoRead: true, halfClosure: true)
        try loop.submit { channel.receive(Self.bytes(5), fin: true) }.wait()
        #expect(try loop.submit { recorder.inputClosed }.wait())
        #expect(channel.isActive)
        // This side may still write after the peer's FIN.
        try channel.writeAndFlush(Self.bytes(7)).wait()
        #expect(try loop.submit { owner.written.count }.wait() == 7)
        #expect(try loop.submit { owner.finished }.wait() == false)
        try channel.close(mode: .output).wait()
        #expect(try loop.submit { owner.finished }.wait())
        try channel.closeFuture.wait()
        #expect(!channel.isActive)
        #expect(try loop.submit { recorder.inactive }.wait())
    }

    @Test("without half-closure a FIN closes the channel (after the bytes before it), and a FIN goes back")
    func finWithoutHalfClosure() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let owner = RecordingStreamOwner()
        let (channel, recorder) = try Self.make(loop: loop, owner: owner, autoRead: true)
        try loop.submit { channel.receive(Self.bytes(9), fin: true) }.wait()
        try channel.closeFuture.wait()
        #expect(try loop.submit { recorder.received.count }.wait() == 9)
        #expect(try loop.submit { recorder.inputClosed }.wait() == false)
        #expect(try loop.submit { owner.finished }.wait())
    }

    @Test("close with writes pending: flushed writes were queued and stay queued, unflushed ones fail, then the FIN")
    func closeWithPendingWrites() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let owner = RecordingStreamOwner()
        let (channel, _) = try Self.make(loop: loop, owner: owner, autoRead: true)
        let (first, second) = try loop.submit { () -> (EventLoopFuture<Void>, EventLoopFuture<Void>) in
            let first = channel.write(Self.bytes(100, 1))
            channel.flush()
            let second = channel.write(Self.bytes(50, 2))
            channel.close(promise: nil)
            return (first, second)
        }.wait()
        try first.wait()  // acknowledged to the writer...
        #expect(try loop.submit { owner.written }.wait() == [UInt8](repeating: 1, count: 100))  // ...and queued
        #expect(throws: ChannelError.self) { try second.wait() }
        #expect(try loop.submit { owner.finished }.wait())
        #expect(try loop.submit { owner.channelClosed }.wait())
        try channel.closeFuture.wait()
        #expect(throws: ChannelError.self) { try channel.writeAndFlush(Self.bytes(1)).wait() }
    }

    @Test("writability flips above the high watermark and back at half of it")
    func writability() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let owner = RecordingStreamOwner()
        let (channel, recorder) = try Self.make(loop: loop, owner: owner, autoRead: true, highWater: 1000)
        try channel.writeAndFlush(Self.bytes(800)).wait()
        #expect(channel.isWritable)
        try channel.writeAndFlush(Self.bytes(300)).wait()
        #expect(!channel.isWritable)
        // The peer acknowledges some: still above the low mark (500).
        try loop.submit {
            owner.buffered = 600
            channel.bufferedChanged()
        }.wait()
        #expect(!channel.isWritable)
        try loop.submit {
            owner.buffered = 400
            channel.bufferedChanged()
        }.wait()
        #expect(channel.isWritable)
        #expect(try loop.submit { recorder.writabilityChanges }.wait() == [false, true])
    }

    @Test("the stream ending hands over what was received, even unasked, then closes the channel")
    func streamEnded() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let owner = RecordingStreamOwner()
        let (channel, recorder) = try Self.make(loop: loop, owner: owner, autoRead: false, halfClosure: true)
        try loop.submit {
            channel.receive(Self.bytes(64), fin: false)
            channel.streamEnded()
        }.wait()
        try channel.closeFuture.wait()
        #expect(try loop.submit { recorder.received.count }.wait() == 64)
        #expect(try loop.submit { recorder.inputClosed }.wait())
        #expect(try loop.submit { recorder.inactive }.wait())
    }

    @Test("a failing initializer resets the stream and fails the start")
    func initializerFails() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let owner = RecordingStreamOwner()
        struct Refused: Error {}
        let started = try loop.submit {
            QUICStreamChannel(
                streamID: 8, owner: owner, eventLoop: loop, parent: nil, localAddress: nil,
                remoteAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 1), highWater: 1 << 20
            ).start { ch in ch.eventLoop.makeFailedFuture(Refused()) }
        }.wait()
        #expect(throws: Refused.self) { try started.wait() }
        #expect(try loop.submit { owner.failed }.wait())
    }

    @Test("the read state: nothing without demand, everything with it, the FIN once after the bytes")
    func readState() {
        var state = QUICStreamReadState()
        state.received(Self.bytes(3))
        #expect(state.next(active: true) == .nothing)
        state.readRequested()
        #expect(state.next(active: false) == .nothing)
        #expect(state.next(active: true) == .deliver([Self.bytes(3)], eof: false))
        state.received(Self.bytes(2))
        state.receivedFIN()
        state.received(Self.bytes(1))  // after the FIN: ignored
        state.readRequested()
        #expect(state.next(active: true) == .deliver([Self.bytes(2)], eof: true))
        state.readRequested()
        #expect(state.next(active: true) == .nothing)
        #expect(state.drain() == .nothing)
    }
}
