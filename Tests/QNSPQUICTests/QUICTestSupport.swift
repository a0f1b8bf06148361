import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSPQUIC

/// Test-only `echo` ALPN service: every byte of a stream goes back; FIN is answered with FIN.
final class StreamEcho: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.write(data, promise: nil) }
    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                channel.close(mode: .output, promise: nil)
            }
        }
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    static func registry() -> QUICServiceRegistry {
        var r = QUICServiceRegistry()
        r.register("echo") { ch, _ in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(StreamEcho()) }
        }
        return r
    }
}

/// Deterministic pseudo-random bytes (so a failure can be replayed), hashed as they go.
struct ByteSource {
    var state: UInt64
    mutating func next(_ n: Int, into buf: inout ByteBuffer) {
        var left = n
        while left >= 8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            buf.writeInteger(state ^ (state >> 29))
            left -= 8
        }
        buf.writeRepeatingByte(UInt8(truncatingIfNeeded: state), count: left)
    }
}

/// The result of a bulk transfer over one stream.
struct BulkResult: Sendable, Equatable {
    var sent: SHA256Digest
    var received: SHA256Digest
    var receivedBytes: Int
}

/// Writes `total` bytes on a raw stream while writable, then FIN; hashes what comes back until FIN.
final class StreamBulk: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let total: Int
    private var sent = 0
    private var received = 0
    private var sentHash = SHA256()
    private var receivedHash = SHA256()
    private var source = ByteSource(state: 0x9E37_79B9_7F4A_7C15)
    private var finished = false
    let done: EventLoopPromise<BulkResult>
    private var sentDigest: SHA256Digest?

    init(total: Int, done: EventLoopPromise<BulkResult>) {
        self.total = total
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        pump(context: context)
        context.fireChannelActive()
    }
    func channelWritabilityChanged(context: ChannelHandlerContext) { pump(context: context) }

    private func pump(context: ChannelHandlerContext) {
        guard sentDigest == nil else { return }
        while sent < total && context.channel.isWritable {
            let n = min(64 * 1024, total - sent)
            var buf = context.channel.allocator.buffer(capacity: n)
            source.next(n, into: &buf)
            buf.withUnsafeReadableBytes { sentHash.update(bufferPointer: $0) }
            sent += n
            context.write(wrapOutboundOut(buf), promise: nil)
        }
        context.flush()
        if sent == total {
            sentDigest = sentHash.finalize()
            context.close(mode: .output, promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let b = unwrapInboundIn(data)
        b.withUnsafeReadableBytes { receivedHash.update(bufferPointer: $0) }
        received += b.readableBytes
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent { complete() }
    }
    func channelInactive(context: ChannelHandlerContext) { complete() }
    func errorCaught(context: ChannelHandlerContext, error: Error) { done.fail(error) }

    private func complete() {
        guard !finished else { return }
        finished = true
        guard let sentDigest else {
            done.fail(QUICError.connectionClosed)
            return
        }
        done.succeed(BulkResult(sent: sentDigest, received: receivedHash.finalize(), receivedBytes: received))
    }
}

/// A Python peer (aioquic) started for real; its stdout lines are collected as they arrive.
final class PythonPeer: @unchecked Sendable {
    let process = Process()
    private let lock = NIOLock()
    private var lines: [String] = []
    private var partial = ""
    private let signal = DispatchSemaphore(value: 0)
    private let stderrPipe = Pipe()

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Python/aioquic_peer.py")
            .path
    }

    static var available: Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import aioquic"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    init(_ arguments: [String]) throws {
        let out = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script] + arguments
        process.standardOutput = out
        process.standardError = stderrPipe
        out.fileHandleForReading.readabilityHandler = { [weak self] h in
            let data = h.availableData
            guard let self else { return }
            if data.isEmpty {
                h.readabilityHandler = nil
                self.signal.signal()
                return
            }
            self.lock.withLock {
                self.partial += String(decoding: data, as: UTF8.self)
                while let nl = self.partial.firstIndex(of: "\n") {
                    self.lines.append(String(self.partial[..<nl]))
                    self.partial = String(self.partial[self.partial.index(after: nl)...])
                }
            }
            self.signal.signal()
        }
        try process.run()
    }

    /// Waits (up to `timeout`) for a stdout line starting with `prefix`.
    func line(prefix: String, timeout: TimeInterval) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let l = lock.withLock({ lines.first { $0.hasPrefix(prefix) } }) { return l }
            if !process.isRunning && lock.withLock({ lines.first { $0.hasPrefix(prefix) } }) == nil {
                // Give the reader a last chance to deliver buffered output.
                if signal.wait(timeout: .now() + 1) == .timedOut { throw PeerError.exited(stderr) }
                continue
            }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { throw PeerError.timeout(prefix, stderr) }
            _ = signal.wait(timeout: .now() + min(left, 1))
        }
    }

    var stderr: String {
        guard !process.isRunning else { return "" }
        return String(decoding: stderrPipe.fileHandleForReading.availableData, as: UTF8.self)
    }

    func stop() {
        // SIGKILL: the test runner's children inherit a signal mask that can block SIGTERM.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    enum PeerError: Error {
        case timeout(String, String)
        case exited(String)
    }
}

/// A UDP relay between a client and a server that drops, reorders and duplicates datagrams, and
/// counts what the server sent before the client's address was validated.
final class LossyRelay: @unchecked Sendable {
    struct Impairment: Sendable {
        var drop = 0.0
        var duplicate = 0.0
        var reorder = 0.0
        /// Forward only the client's first datagram (its address is never validated).
        var onlyFirstFromClient = false
    }

    let front: Channel  // clients talk to this one
    private let backBox: NIOLockedValueBox<Channel>  // talks to the server; replaced by `rebind`
    let state: State
    private let frontSide: Side
    var back: Channel { backBox.withLockedValue { $0 } }

    final class State: @unchecked Sendable {
        let lock = NIOLock()
        var client: SocketAddress?
        let server: SocketAddress
        var impairment: Impairment
        var rng: UInt64
        var dropped = 0, forwarded = 0, retries = 0
        var clientDatagrams = 0, clientBytes = 0, serverBytes = 0
        var held: (Channel, AddressedEnvelope<ByteBuffer>)?
        init(server: SocketAddress, impairment: Impairment, seed: UInt64) {
            self.server = server
            self.impairment = impairment
            rng = seed
        }
        func random() -> Double {
            rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(rng >> 11) / Double(1 << 53)
        }
    }

    final class Side: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let state: State
        let fromClient: Bool
        var other: Channel?
        init(state: State, fromClient: Bool) {
            self.state = state
            self.fromClient = fromClient
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let env = unwrapInboundIn(data)
            guard let other else { return }
            var sends: [(Channel, AddressedEnvelope<ByteBuffer>)] = []
            state.lock.withLock {
                if fromClient {
                    state.client = env.remoteAddress
                    state.clientDatagrams += 1
                    if state.impairment.onlyFirstFromClient && state.clientDatagrams > 1 { return }
                    state.clientBytes += env.data.readableBytes
                } else {
                    state.serverBytes += env.data.readableBytes
                }
                if !fromClient, let first = env.data.getInteger(at: env.data.readerIndex, as: UInt8.self),
                    first & 0xF0 == 0xF0
                {
                    state.retries += 1
                }
                guard let dest = fromClient ? state.server : state.client else { return }
                if state.random() < state.impairment.drop {
                    state.dropped += 1
                    return
                }
                let e = AddressedEnvelope(remoteAddress: dest, data: env.data)
                state.forwarded += 1
                if let h = state.held {
                    sends.append((other, e))
                    sends.append(h)
                    state.held = nil
                } else if state.random() < state.impairment.reorder {
                    state.held = (other, e)
                } else {
                    sends.append((other, e))
                }
                if state.random() < state.impairment.duplicate { sends.append((other, e)) }
            }
            for (ch, e) in sends { ch.writeAndFlush(e, promise: nil) }
        }
    }

    private init(front: Channel, back: Channel, state: State, frontSide: Side) {
        self.front = front
        backBox = NIOLockedValueBox(back)
        self.state = state
        self.frontSide = frontSide
    }

    /// NAT rebinding: the server sees the client's packets come from a new port from now on.
    func rebind(group: EventLoopGroup) async throws {
        let loop = front.eventLoop
        let side = Side(state: state, fromClient: false)
        side.other = front
        let newBack = try await DatagramBootstrap(group: loop)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(side) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let old = backBox.withLockedValue { b in
            let o = b
            b = newBack
            return o
        }
        let fs = frontSide
        try await loop.submit { fs.other = newBack }.get()
        try await old.close()
    }

    static func start(
        group: EventLoopGroup,
        server: SocketAddress,
        impairment: Impairment,
        seed: UInt64 = 42
    ) async throws -> LossyRelay {
        let state = State(server: server, impairment: impairment, seed: seed)
        let loop = group.next()
        let frontSide = Side(state: state, fromClient: true)
        let backSide = Side(state: state, fromClient: false)
        let front = try await DatagramBootstrap(group: loop)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(frontSide) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let back = try await DatagramBootstrap(group: loop)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(backSide) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        try await loop.submit {
            frontSide.other = back
            backSide.other = front
        }.get()
        return LossyRelay(front: front, back: back, state: state, frontSide: frontSide)
    }

    var address: SocketAddress? { front.localAddress }

    func stop() async {
        try? await front.close()
        try? await back.close()
    }

    var counters: (clientBytes: Int, serverBytes: Int, clientDatagrams: Int) {
        state.lock.withLock { (state.clientBytes, state.serverBytes, state.clientDatagrams) }
    }
}

enum TestCerts {
    static let pair: (certificate: [UInt8], key: [UInt8]) = {
        do { return try QUICCredentials.generateSelfSigned(commonName: "qnspquic-test") } catch { return ([], []) }
    }()
    static func server() throws -> QUICCredentials {
        try QUICCredentials(certificatePEM: pair.certificate, keyPEM: pair.key)
    }

    /// Writes the pair to a temporary directory for aioquic.
    static func files() throws -> (cert: String, key: String, dir: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qnspquic-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let cert = dir + "/cert.pem"
        let key = dir + "/key.pem"
        try Data(pair.certificate).write(to: URL(fileURLWithPath: cert))
        try Data(pair.key).write(to: URL(fileURLWithPath: key))
        return (cert, key, dir)
    }
}
