import Crypto
import Foundation
import NIOCore
import NIOPosix
import QNSPQUIC
import Testing

/// Interop with aioquic 1.7.2 (Tests/requirements.txt), an independent QUIC stack, both ways.
@Suite(
    "QUIC interop with aioquic",
    .serialized,
    .enabled(if: PythonPeer.available, "python3 -m pip install aioquic==1.7.2")
)
struct QUICInteropTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    static let size = 16 << 20

    @Test(
        "our client -> aioquic server: custom ALPN, raw bidirectional stream, 16 MiB each way, SHA-256 on both ends",
        .timeLimit(.minutes(3))
    )
    func aioquicServer() async throws {
        let files = try TestCerts.files()
        defer { try? FileManager.default.removeItem(atPath: files.dir) }
        let peer = try PythonPeer(["server", files.cert, files.key, "qnsp-interop/1"])
        defer { peer.stop() }
        let portLine = try peer.line(prefix: "PORT ", timeout: 30)
        let port = try #require(Int(portLine.dropFirst(5)))
        let ce = try await QUICEndpoint.bind(group: group, host: "127.0.0.1", port: 0).get()
        let c = try await ce.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: port), alpn: "qnsp-interop/1")
            .get()
        #expect(c.alpn == "qnsp-interop/1")
        let done = group.next().makePromise(of: BulkResult.self)
        _ = try await c.openStream { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(StreamBulk(total: Self.size, done: done))
            }
        }.get()
        let r = try await done.futureResult.get()
        #expect(r.receivedBytes == Self.size)
        #expect(r.sent == r.received)
        let recv = try peer.line(prefix: "RECV ", timeout: 30).split(separator: " ")
        #expect(recv.count == 3 && recv[1] == hex(r.sent) && recv[2] == "\(Self.size)", "aioquic saw \(recv)")
        try await c.close().get()
        try await ce.close().get()
        try await group.shutdownGracefully()
    }

    @Test("aioquic client -> our server (echo ALPN): 16 MiB each way, SHA-256 checked", .timeLimit(.minutes(3)))
    func aioquicClient() async throws {
        let server = try await QUICEndpoint.bind(
            group: group,
            host: "127.0.0.1",
            port: 0,
            server: try TestCerts.server(),
            services: StreamEcho.registry()
        ).get()
        let port = try #require(server.localAddress?.port)
        let peer = try PythonPeer(["client", "\(port)", "echo", "\(Self.size)"])
        defer { peer.stop() }
        let line = try peer.line(prefix: "{", timeout: 150)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(json["error_code"] == nil, "\(json)")
        #expect(json["sent"] as? String == json["received"] as? String)
        #expect(json["received_bytes"] as? Int == Self.size)
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    @Test(
        "aioquic client offering an unknown ALPN is refused with no_application_protocol (0x178)",
        .timeLimit(.minutes(1))
    )
    func aioquicWrongALPN() async throws {
        let server = try await QUICEndpoint.bind(
            group: group,
            host: "127.0.0.1",
            port: 0,
            server: try TestCerts.server(),
            services: StreamEcho.registry()
        ).get()
        let port = try #require(server.localAddress?.port)
        let peer = try PythonPeer(["client", "\(port)", "no-such-service", "10"])
        defer { peer.stop() }
        let line = try peer.line(prefix: "{", timeout: 30)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(json["error_code"] as? Int == 0x100 + 120, "\(json)")
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    func hex(_ d: SHA256Digest) -> String { d.map { String(format: "%02x", $0) }.joined() }
}
