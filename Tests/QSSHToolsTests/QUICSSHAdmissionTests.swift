import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSPBench
import QNSPQUIC
import Testing

/// Fulfils `banner` with the first bytes a stream receives, or fails it if the stream closes first.
private final class FirstBytes: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let banner: EventLoopPromise<String>
    init(banner: EventLoopPromise<String>) { self.banner = banner }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        banner.succeed(String(buffer: unwrapInboundIn(data)))
    }
    func channelInactive(context: ChannelHandlerContext) { banner.fail(QUICError.connectionClosed) }
}

extension ToolSuites.BridgeTests {
    @Test(
        "qsshd --bridge: ALPN ssh streams go through admission keyed on the QUIC peer (--per-source-max-startups 2: the third stream is closed, the first still talks to sshd)",
        .timeLimit(.minutes(2))
    )
    func plainSSHAdmission() async throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sshd = try StockSSHD.start(dir: dir)
        defer { sshd.stop() }
        let server = try q.start(dir, extra: ["--bridge", "127.0.0.1:\(sshd.port)", "--per-source-max-startups", "2"])
        defer { server.stop() }
        #expect(server.waitForLog("QUIC on UDP 127.0.0.1:\(server.port) (ALPN qssh/1, ssh)"), "\(server.log)")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let ce = try await QUICEndpoint.bind(group: group, host: "127.0.0.1", port: 0).get()
        let c = try await ce.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: server.port), alpn: QUICServiceRegistry.ssh).get()
        func open() async throws -> (Channel, EventLoopFuture<String>) {
            let banner = group.next().makePromise(of: String.self)
            let ch = try await c.openStream { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(FirstBytes(banner: banner)) }
            }.get()
            try await ch.writeAndFlush(ByteBuffer(string: "SSH-2.0-admission_test\r\n")).get()
            return (ch, banner.futureResult)
        }
        let (a, aBanner) = try await open()
        #expect(try await aBanner.get().hasPrefix("SSH-2.0-"))
        let (b, bBanner) = try await open()
        #expect(try await bBanner.get().hasPrefix("SSH-2.0-"))
        let (third, thirdBanner) = try await open()
        await #expect(throws: (any Error).self) { _ = try await thirdBanner.get() }
        try await third.closeFuture.get()
        // The admitted streams are still joined to sshd.
        #expect(a.isActive && b.isActive)
        try await a.close().get()
        try await b.close().get()
        try await ce.close().get()
    }
}
