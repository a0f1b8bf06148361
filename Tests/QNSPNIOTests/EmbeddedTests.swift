import NIOCore
import NIOEmbedded
import QNSP
import QNSPCrypto
import QNSPNIO
import Testing

/// Drives two QNSPHandlers on EmbeddedChannels sharing a virtual clock, so time-based behaviour is deterministic.
@Suite("QNSPHandler on EmbeddedChannel")
struct EmbeddedTests {
    final class Events: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var events: [QNSPUserEvent] = []
        var data: [UInt8] = []
        var sawInputClosed = false
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let e = event as? QNSPUserEvent { events.append(e) }
            if case .inputClosed? = event as? ChannelEvent { sawInputClosed = true }
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { self.data += Array(buffer: unwrapInboundIn(data)) }
    }

    /// Moves bytes both ways until quiet.
    func shuttle(_ a: EmbeddedChannel, _ b: EmbeddedChannel) throws {
        var moved = true
        while moved {
            moved = false
            while let out = try a.readOutbound(as: ByteBuffer.self) { try b.writeInbound(out); moved = true }
            while let out = try b.readOutbound(as: ByteBuffer.self) { try a.writeInbound(out); moved = true }
        }
    }

    /// A client and a server QNSPHandler with a finished handshake; the server's events are recorded.
    func establishedPair() throws -> (client: EmbeddedChannel, server: EmbeddedChannel, serverEvents: Events) {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop), server = EmbeddedChannel(loop: loop)
        let se = Events()
        try server.pipeline.syncOperations.addHandler(QNSPHandler(connection: QNSPConnection(server: NIOKeys.serverParameters), isClient: false))
        try server.pipeline.syncOperations.addHandler(se)
        try client.pipeline.syncOperations.addHandler(QNSPHandler(connection: QNSPConnection(client: NIOKeys.clientParameters()), isClient: true))
        try server.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        try shuttle(client, server)
        return (client, server, se)
    }

    @Test("the sending key is updated on the configured interval and data keeps flowing")
    func timedRekey() throws {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop), server = EmbeddedChannel(loop: loop)
        let ce = Events(), se = Events()
        try server.pipeline.syncOperations.addHandler(
            QNSPHandler(connection: QNSPConnection(server: NIOKeys.serverParameters), isClient: false, rekeyInterval: .seconds(60)))
        try server.pipeline.syncOperations.addHandler(se)
        try client.pipeline.syncOperations.addHandler(
            QNSPHandler(connection: QNSPConnection(client: NIOKeys.clientParameters()), isClient: true, rekeyInterval: .seconds(10)))
        try client.pipeline.syncOperations.addHandler(ce)
        // Writes made before the handshake completes are held, not lost.
        client.write(ByteBuffer(string: "early"), promise: nil)
        client.flush()
        try server.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        try shuttle(client, server)
        guard case .established? = ce.events.first else { Issue.record("client not established: \(ce.events)"); return }
        #expect(se.data == Array("early".utf8))
        loop.advanceTime(by: .seconds(35))  // three client intervals, no server interval
        try shuttle(client, server)
        #expect(se.events.filter { if case .peerKeyUpdated = $0 { return true }; return false }.count == 3)
        #expect(!ce.events.contains { if case .peerKeyUpdated = $0 { return true }; return false })
        try client.writeAndFlush(ByteBuffer(string: "after")).wait()
        try shuttle(client, server)
        #expect(se.data == Array("earlyafter".utf8))
        // A ping from the application comes back as a pong event.
        client.pipeline.triggerUserOutboundEvent(QNSPCommand.ping([7]), promise: nil)
        try shuttle(client, server)
        #expect(ce.events.contains(.pong([7])))
        // Half-close is carried as a message; the other direction keeps working.
        client.close(mode: .output, promise: nil)
        try shuttle(client, server)
        #expect(server.isActive)
        _ = try? client.finish()
        _ = try? server.finish()
    }

    @Test("a peer that vanishes mid-session is reported, not silently ignored")
    func abruptEOF() throws {
        let (client, server, _) = try establishedPair()
        server.pipeline.fireChannelInactive()
        #expect(throws: QNSPError.truncatedInput("the session: the peer disconnected without a close message")) { try server.throwIfErrorCaught() }
        _ = try? client.finish()
    }

    @Test("a transport half-close (TCP FIN) mid-session is a truncation error, never passed up as end of stream")
    func transportFINIsNotEndOfStream() throws {
        let (client, server, se) = try establishedPair()
        server.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(throws: QNSPError.truncatedInput("the session: the peer disconnected without a close message")) { try server.throwIfErrorCaught() }
        #expect(!se.sawInputClosed)
        #expect(!server.isActive)
        _ = try? client.finish()
    }

    @Test("after the peer's end of stream, a transport half-close just closes the channel")
    func finAfterEndOfStream() throws {
        let (client, server, se) = try establishedPair()
        client.close(promise: nil)  // orderly: a close cell goes out first
        try shuttle(client, server)
        #expect(se.events.contains(.peerClosed(code: 0, reason: "")))
        server.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(throws: Never.self) { try server.throwIfErrorCaught() }
        #expect(!server.isActive)
    }

    /// Writes `reply` the first time it reads anything.
    final class ReplyOnFirstRead: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        var replied = false
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !replied else { return }
            replied = true
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "B")), promise: nil)
        }
    }

    @Test("a write made while reading the peer's first data does not overtake writes held during the handshake")
    func heldWritesKeepTheirOrder() throws {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop), server = EmbeddedChannel(loop: loop)
        let se = Events()
        try server.pipeline.syncOperations.addHandler(QNSPHandler(connection: QNSPConnection(server: NIOKeys.serverParameters), isClient: false))
        try server.pipeline.syncOperations.addHandler(se)
        try client.pipeline.syncOperations.addHandler(QNSPHandler(connection: QNSPConnection(client: NIOKeys.clientParameters()), isClient: true))
        try client.pipeline.syncOperations.addHandler(ReplyOnFirstRead())
        // Both sides write before the handshake ends (as an SSH banner is): the writes are held.
        client.writeAndFlush(ByteBuffer(string: "A"), promise: nil)
        server.writeAndFlush(ByteBuffer(string: "srv"), promise: nil)
        try server.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        // Deliver each side's pending output as one read, so the auth result and the server's
        // first data reach the client together (as they do over TCP).
        var moved = true
        while moved {
            moved = false
            for (from, to) in [(client, server), (server, client)] {
                var merged = ByteBuffer()
                while var out = try from.readOutbound(as: ByteBuffer.self) { merged.writeBuffer(&out) }
                if merged.readableBytes > 0 { try to.writeInbound(merged); moved = true }
            }
        }
        #expect(se.data == Array("AB".utf8), "server got \(String(decoding: se.data, as: UTF8.self))")
    }

    @Test("keepalive: pings keep a live session open; a silent peer fails it within interval x maxMissed")
    func keepalive() throws {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop), server = EmbeddedChannel(loop: loop)
        try server.pipeline.syncOperations.addHandler(QNSPHandler(connection: QNSPConnection(server: NIOKeys.serverParameters), isClient: false))
        try client.pipeline.syncOperations.addHandler(QNSPHandler(
            connection: QNSPConnection(client: NIOKeys.clientParameters()), isClient: true,
            keepalive: .init(interval: .seconds(10), maxMissed: 3)))
        try server.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        try shuttle(client, server)
        for _ in 0..<6 {  // a minute of answered pings
            loop.advanceTime(by: .seconds(10))
            try shuttle(client, server)
        }
        #expect(client.isActive)
        #expect(throws: Never.self) { try client.throwIfErrorCaught() }
        // The server stops answering (nothing is shuttled any more).
        loop.advanceTime(by: .seconds(20))
        #expect(client.isActive)
        loop.advanceTime(by: .seconds(10))
        #expect(throws: QNSPError.peerUnresponsive(seconds: 30)) { try client.throwIfErrorCaught() }
        #expect(!client.isActive)
        _ = try? server.finish()
    }

    @Test("login grace time: a server drops a connection whose handshake does not finish in time")
    func handshakeTimeout() throws {
        let loop = EmbeddedEventLoop()
        let server = EmbeddedChannel(loop: loop)
        try server.pipeline.syncOperations.addHandler(QNSPHandler(
            connection: QNSPConnection(server: NIOKeys.serverParameters), isClient: false, handshakeTimeout: .seconds(30)))
        try server.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        try server.writeInbound(ByteBuffer(bytes: Array("QNSP".utf8)))  // a client that starts and stalls
        loop.advanceTime(by: .seconds(29))
        #expect(server.isActive)
        loop.advanceTime(by: .seconds(1))
        #expect(throws: QNSPError.handshakeTimeout(seconds: 30)) { try server.throwIfErrorCaught() }
        #expect(!server.isActive)
    }
}
