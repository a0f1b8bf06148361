import Crypto
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import QNSP
import QNSPCrypto
import QNSPNIO
import Testing

enum NIOKeys {
    static let host: HostKeyPair = try! HostKeyPair.generate()
    static let user: UserKeyPair = try! UserKeyPair.generate()
    static let stranger: UserKeyPair = try! UserKeyPair.generate()
    static var serverParameters: QNSPConnection.ServerParameters {
        .init(hostKeys: [host]) { _, key in key == user.publicKey ? .accept : .reject("unknown key") }
    }
    static func clientParameters(user: UserKeyPair = user, pinned: HostPublicKey? = host.publicKey) -> QNSPConnection.ClientParameters {
        .init(username: "tester", user: user, pinnedHostKey: pinned)
    }
}

/// Records raw bytes crossing the socket (placed below the QNSP handler).
final class WireRecorder: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let lock = NIOLock()
    var inbound = 0, outbound = 0
    var keep: Int
    var inboundBytes: [UInt8] = [], outboundBytes: [UInt8] = []
    init(keep: Int = 0) { self.keep = keep }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let b = unwrapInboundIn(data)
        lock.withLock {
            inbound += b.readableBytes
            if inboundBytes.count < keep { inboundBytes += b.readableBytesView.prefix(keep - inboundBytes.count) }
        }
        context.fireChannelRead(data)
    }
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let b = unwrapOutboundIn(data)
        lock.withLock {
            outbound += b.readableBytes
            if outboundBytes.count < keep { outboundBytes += b.readableBytesView.prefix(keep - outboundBytes.count) }
        }
        context.write(data, promise: promise)
    }
    var totals: (Int, Int) { lock.withLock { (inbound, outbound) } }
}

/// Writes `total` pseudo-random bytes while the channel is writable, hashes what comes back.
final class BulkClient: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let total: Int
    var sent = 0, received = 0
    var sentHash = SHA256(), receivedHash = SHA256()
    let done: EventLoopPromise<(SHA256Digest, SHA256Digest)>
    var state: UInt64 = 1
    var started = false

    init(total: Int, done: EventLoopPromise<(SHA256Digest, SHA256Digest)>) { self.total = total; self.done = done }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .established? = event as? QNSPUserEvent { started = true; pump(context: context) }
        context.fireUserInboundEventTriggered(event)
    }
    func channelWritabilityChanged(context: ChannelHandlerContext) { if started { pump(context: context) } }
    func pump(context: ChannelHandlerContext) {
        while sent < total && context.channel.isWritable {
            let n = min(64 * 1024, total - sent)
            var buf = context.channel.allocator.buffer(capacity: n)
            var words = n / 8
            while words > 0 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                buf.writeInteger(state)
                words -= 1
            }
            buf.writeRepeatingByte(7, count: n - buf.readableBytes)
            buf.withUnsafeReadableBytes { sentHash.update(bufferPointer: $0) }
            sent += n
            context.write(wrapOutboundOut(buf), promise: nil)
        }
        context.flush()
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let b = unwrapInboundIn(data)
        b.withUnsafeReadableBytes { receivedHash.update(bufferPointer: $0) }
        received += b.readableBytes
        if received == total { done.succeed((sentHash.finalize(), receivedHash.finalize())) }
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) { done.fail(error) }
}

final class Echo: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.write(data, promise: nil) }
    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
}

/// Synchronous tests that wait on NIO futures (`.wait()`): an `await` needs a thread of Swift's
/// cooperative pool to resume, and in the full parallel run that pool (one thread per core) is
/// often held by tests blocked on subprocesses, which can stall an awaiting test for minutes.
@Suite("QNSP over NIO", .serialized)
struct TunnelTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    func startEchoServer(recorder: WireRecorder? = nil, options: QNSPBootstrap.Options = .init()) throws -> Channel {
        try QNSPBootstrap.bindServer(group: group, host: "127.0.0.1", port: 0, parameters: NIOKeys.serverParameters, options: options) { ch, _ in
            ch.eventLoop.makeCompletedFuture {
                if let recorder { try ch.pipeline.syncOperations.addHandler(recorder, position: .first) }
                try ch.pipeline.syncOperations.addHandler(Echo())
            }
        }.wait()
    }

    @Test("64 MiB round trip through an echo server over loopback TCP, hash checked, whole cells on the wire")
    func bulk64MiB() throws {
        let recorder = WireRecorder()
        let server = try startEchoServer(recorder: recorder)
        let port = try #require(server.localAddress?.port)
        let total = 64 << 20
        let done = group.next().makePromise(of: (SHA256Digest, SHA256Digest).self)
        let (client, handshake) = try QNSPBootstrap.connect(group: group, host: "127.0.0.1", port: port, parameters: NIOKeys.clientParameters()) { ch in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(BulkClient(total: total, done: done)) }
        }.wait()
        let info = try handshake.wait()
        #expect(info.username == "tester")
        let (sent, received) = try done.futureResult.wait()
        #expect(sent == received)
        try client.close().wait()
        try server.close().wait()
        let (inBytes, outBytes) = recorder.totals
        #expect(inBytes >= total && outBytes >= total)
        #expect(inBytes % 768 == 0 && outBytes % 768 == 0, "wire bytes \(inBytes) / \(outBytes) are not whole cells")
        try group.syncShutdownGracefully()
    }

    @Test("captured wire bytes: whole cells, no plaintext, no user name")
    func captureHasNoPlaintext() throws {
        let recorder = WireRecorder(keep: 1 << 20)
        let server = try startEchoServer(recorder: recorder)
        let port = try #require(server.localAddress?.port)
        let reply = group.next().makePromise(of: ByteBuffer.self)
        let collector = NIOLockedValueBox(ByteBuffer())
        let (client, handshake) = try QNSPBootstrap.connect(group: group, host: "127.0.0.1", port: port, parameters: NIOKeys.clientParameters()) { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(Collector(expect: 4 * 5000, box: collector, done: reply))
            }
        }.wait()
        _ = try handshake.wait()
        let secret = String(repeating: "TOPSECRET", count: 4 * 5000 / 9 + 1).prefix(4 * 5000)
        try client.writeAndFlush(ByteBuffer(string: String(secret))).wait()
        let back = try reply.futureResult.wait()
        #expect(back.getString(at: 0, length: back.readableBytes) == String(secret))
        try client.close().wait()
        try server.close().wait()
        let (inBytes, outBytes) = recorder.totals
        #expect(inBytes % 768 == 0 && outBytes % 768 == 0)
        let wire = recorder.lock.withLock { recorder.inboundBytes + recorder.outboundBytes }
        #expect(!contains(wire, Array("TOPSECRET".utf8)))
        #expect(!contains(wire, Array("tester".utf8)))
        try group.syncShutdownGracefully()
    }

    @Test("a slow reader: the sender becomes unwritable and memory stays bounded, then everything arrives")
    func backpressure() throws {
        var options = QNSPBootstrap.Options()
        options.autoRead = false
        let total = 32 << 20
        let blocked = group.next().makePromise(of: Int.self)
        let done = group.next().makePromise(of: (SHA256Digest, SHA256Digest).self)
        // Server: sends `total` bytes as fast as writability allows, notes when it first has to stop.
        let server = try QNSPBootstrap.bindServer(group: group, host: "127.0.0.1", port: 0, parameters: NIOKeys.serverParameters) { ch, _ in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Flooder(total: total, blocked: blocked)) }
        }.wait()
        let port = try #require(server.localAddress?.port)
        let (client, handshake) = try QNSPBootstrap.connect(
            group: group, host: "127.0.0.1", port: port, parameters: NIOKeys.clientParameters(), options: options
        ) { ch in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(SlowReader(total: total, done: done)) }
        }.wait()
        _ = try handshake.wait()
        // The client never asked to read, so the server must hit backpressure long before 32 MiB.
        let writtenWhenBlocked = try blocked.futureResult.wait()
        #expect(writtenWhenBlocked < 16 << 20, "server wrote \(writtenWhenBlocked) bytes before backpressure")
        client.pipeline.fireUserInboundEventTriggered(SlowReader.Start())
        let (a, b) = try done.futureResult.wait()
        #expect(a == b)
        try client.close().wait()
        try server.close().wait()
        try group.syncShutdownGracefully()
    }

    @Test("closing right after a large write delivers every byte, then the close (nothing queued is dropped)", .timeLimit(.minutes(3)))
    func closeDrainsQueuedCells() throws {
        let total = 32 << 20
        let server = try QNSPBootstrap.bindServer(group: group, host: "127.0.0.1", port: 0, parameters: NIOKeys.serverParameters) { ch, handshake in
            handshake.whenSuccess { _ in
                var b = ch.allocator.buffer(capacity: total)
                b.writeRepeatingByte(0x42, count: total)
                ch.writeAndFlush(b, promise: nil)
                ch.close(promise: nil)
            }
            return ch.eventLoop.makeSucceededVoidFuture()
        }.wait()
        let port = try #require(server.localAddress?.port)
        let done = group.next().makePromise(of: (Int, QNSPUserEvent?).self)
        let (client, handshake) = try QNSPBootstrap.connect(group: group, host: "127.0.0.1", port: port, parameters: NIOKeys.clientParameters()) { ch in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(CountUntilClosed(done: done)) }
        }.wait()
        _ = try handshake.wait()
        let (count, event) = try done.futureResult.wait()
        #expect(count == total)
        #expect(event == .peerClosed(code: 0, reason: ""))
        try? client.closeFuture.wait()
        try server.close().wait()
        try group.syncShutdownGracefully()
    }

    @Test("a half-close answered with a half-close while cells are still queued loses nothing (the double close waits for the drain)")
    func halfCloseAnswerDrains() throws {
        let total = 32 << 20
        let server = try QNSPBootstrap.bindServer(group: group, host: "127.0.0.1", port: 0, parameters: NIOKeys.serverParameters) { ch, handshake in
            handshake.whenSuccess { _ in
                var b = ch.allocator.buffer(capacity: total)
                b.writeRepeatingByte(0x42, count: total)
                ch.writeAndFlush(b, promise: nil)  // far more than the socket takes at once: cells stay queued
            }
            // Like an echo server: the client's end of stream is answered with ours, from inside the read.
            return ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(HalfCloseOnEOF()) }
        }.wait()
        let port = try #require(server.localAddress?.port)
        let done = group.next().makePromise(of: (Int, QNSPUserEvent?).self)
        let (client, handshake) = try QNSPBootstrap.connect(group: group, host: "127.0.0.1", port: port, parameters: NIOKeys.clientParameters()) { ch in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(CountUntilClosed(done: done)) }
        }.wait()
        _ = try handshake.wait()
        try client.close(mode: .output).wait()
        // Both ends sent end-of-stream, so either may close first: what matters is every byte and no error.
        let (count, event) = try done.futureResult.wait()
        #expect(count == total)
        #expect(event == nil || event == .peerClosed(code: 0, reason: ""))
        try server.close().wait()
        try group.syncShutdownGracefully()
    }

    @Test("handshake failures surface as errors through NIO: unknown user, wrong host key")
    func failures() throws {
        let server = try startEchoServer()
        let port = try #require(server.localAddress?.port)
        let (c1, h1) = try QNSPBootstrap.connect(group: group, host: "127.0.0.1", port: port, parameters: NIOKeys.clientParameters(user: NIOKeys.stranger)).wait()
        // The client is told only the generic refusal; the reason stays with the server.
        #expect(throws: QNSPError.userNotAuthorized(QNSPConnection.genericRefusal)) { _ = try h1.wait() }
        try? c1.closeFuture.wait()
        let other = try HostKeyPair.generate()
        let (c2, h2) = try QNSPBootstrap.connect(group: group, host: "127.0.0.1", port: port, parameters: NIOKeys.clientParameters(pinned: other.publicKey)).wait()
        #expect(throws: QNSPError.self) { _ = try h2.wait() }
        try? c2.closeFuture.wait()
        try server.close().wait()
        try group.syncShutdownGracefully()
    }

    @Test("QNSP over a pair of pipes (the stdin/stdout carrier)")
    func stdioCarrier() throws {
        var c2s: [Int32] = [0, 0], s2c: [Int32] = [0, 0]
        #expect(pipe(&c2s) == 0 && pipe(&s2c) == 0)
        let params = NIOKeys.serverParameters
        let server = try QNSPBootstrap.stdio(
            group: group, input: c2s[0], output: s2c[1], connection: { QNSPConnection(server: params) }, isClient: false
        ) { ch, _ in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Echo()) } }.wait()
        let reply = group.next().makePromise(of: ByteBuffer.self)
        let box = NIOLockedValueBox(ByteBuffer())
        let cp = NIOKeys.clientParameters()
        let client = try QNSPBootstrap.stdio(
            group: group, input: s2c[0], output: c2s[1], connection: { QNSPConnection(client: cp) }, isClient: true
        ) { ch, handshake in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Collector(expect: 100_000, box: box, done: reply)) }
        }.wait()
        let payload = String(repeating: "pipe", count: 25_000)
        try client.writeAndFlush(ByteBuffer(string: payload)).wait()
        let back = try reply.futureResult.wait()
        #expect(back.getString(at: 0, length: back.readableBytes) == payload)
        try client.close().wait()
        try? server.closeFuture.wait()
        try group.syncShutdownGracefully()
    }
}

/// Collects bytes until `expect` arrived.
final class Collector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let expect: Int
    let box: NIOLockedValueBox<ByteBuffer>
    let done: EventLoopPromise<ByteBuffer>
    init(expect: Int, box: NIOLockedValueBox<ByteBuffer>, done: EventLoopPromise<ByteBuffer>) { self.expect = expect; self.box = box; self.done = done }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        let all = box.withLockedValue { $0.writeBuffer(&b); return $0 }
        if all.readableBytes >= expect { done.succeed(all) }
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) { done.fail(error) }
}

/// Sends pseudo-random bytes while writable; reports how much was written when writability first dropped.
final class Flooder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let total: Int
    let blocked: EventLoopPromise<Int>
    var sent = 0, reported = false, established = false
    var hash = SHA256()
    init(total: Int, blocked: EventLoopPromise<Int>) { self.total = total; self.blocked = blocked }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .established? = event as? QNSPUserEvent { established = true; pump(context: context) }
    }
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !context.channel.isWritable && !reported { reported = true; blocked.succeed(sent) }
        if established { pump(context: context) }
    }
    func pump(context: ChannelHandlerContext) {
        while sent < total && context.channel.isWritable {
            let n = min(32 * 1024, total - sent)
            var b = context.channel.allocator.buffer(capacity: n)
            b.writeRepeatingByte(UInt8(truncatingIfNeeded: sent / 32768), count: n)
            sent += n
            context.writeAndFlush(wrapOutboundOut(b), promise: nil)
        }
        if sent >= total && !reported { reported = true; blocked.succeed(sent) }
    }
}

/// Reads nothing until told to start, then reads everything and hashes it against the expected stream.
final class SlowReader: ChannelDuplexHandler, @unchecked Sendable {
    struct Start {}
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    let total: Int
    let done: EventLoopPromise<(SHA256Digest, SHA256Digest)>
    var reading = false, received = 0
    var got = SHA256()
    init(total: Int, done: EventLoopPromise<(SHA256Digest, SHA256Digest)>) { self.total = total; self.done = done }
    func read(context: ChannelHandlerContext) { if reading { context.read() } }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is Start { reading = true; context.read() }
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let b = unwrapInboundIn(data)
        b.withUnsafeReadableBytes { got.update(bufferPointer: $0) }
        received += b.readableBytes
        if received == total {
            var want = SHA256()
            var s = 0
            while s < total {
                let n = min(32 * 1024, total - s)
                want.update(data: [UInt8](repeating: UInt8(truncatingIfNeeded: s / 32768), count: n))
                s += n
            }
            done.succeed((got.finalize(), want.finalize()))
        }
    }
    func channelReadComplete(context: ChannelHandlerContext) { if reading { context.read() } }
}

func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= hay.count else { return false }
    for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return true }
    return false
}

#if canImport(Glibc)
import Glibc
#endif

/// Counts plaintext until the channel closes; reports the count and the close event seen.
/// Answers the peer's end of stream with its own, as an echo server does.
final class HalfCloseOnEOF: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent { context.close(mode: .output, promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }
}

final class CountUntilClosed: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let done: EventLoopPromise<(Int, QNSPUserEvent?)>
    var count = 0
    var closeEvent: QNSPUserEvent?
    init(done: EventLoopPromise<(Int, QNSPUserEvent?)>) { self.done = done }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { count += unwrapInboundIn(data).readableBytes }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .peerClosed? = event as? QNSPUserEvent { closeEvent = event as? QNSPUserEvent }
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) { done.fail(error) }
    func channelInactive(context: ChannelHandlerContext) { done.succeed((count, closeEvent)) }
}
