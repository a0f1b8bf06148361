import Foundation
import NIOCore
import NIOPosix
import QNSPQUIC
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What the server answers to datagrams of no connection: Version Negotiation and stateless
/// resets (docs/protocol.md §8.3, §8.4), seen from a plain UDP socket, and a client that is reset.
@Suite("QUIC stateless replies", .serialized)
struct QUICStatelessTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    func echoServer() async throws -> QUICEndpoint {
        try await QUICEndpoint.bind(
            group: group,
            host: "127.0.0.1",
            port: 0,
            server: try TestCerts.server(),
            services: StreamEcho.registry()
        ).get()
    }

    static func random(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255) } }

    /// A short-header datagram of `length` bytes (fixed bit set) to a random 18-byte DCID.
    static func shortHeader(_ length: Int) -> [UInt8] {
        var d = random(length)
        d[0] = d[0] & 0x3F | 0x40
        return d
    }

    /// A long-header datagram of `length` bytes with an unsupported version.
    static func unsupportedVersion(_ length: Int, dcid: [UInt8], scid: [UInt8]) -> [UInt8] {
        var d: [UInt8] = [0xC0, 0x1A, 0x2A, 0x3A, 0x4A, UInt8(dcid.count)] + dcid + [UInt8(scid.count)] + scid
        d += random(length - d.count)
        return d
    }

    /// A Version Negotiation packet: (DCID, SCID, versions), or nil if `d` is not one.
    static func parseVersionNegotiation(_ d: [UInt8]) -> (dcid: [UInt8], scid: [UInt8], versions: [UInt32])? {
        guard d.count >= 7, d[0] & 0x80 != 0, d[1...4].allSatisfy({ $0 == 0 }) else { return nil }
        let dl = Int(d[5])
        guard d.count >= 6 + dl + 1 else { return nil }
        let dcid = Array(d[6..<6 + dl])
        let sl = Int(d[6 + dl])
        let start = 7 + dl + sl
        guard d.count >= start, (d.count - start) % 4 == 0 else { return nil }
        let scid = Array(d[7 + dl..<start])
        let versions = stride(from: start, to: d.count, by: 4).map { i in
            d[i..<i + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
        return (dcid, scid, versions)
    }

    @Test(
        "Version Negotiation: a 1200-byte Initial of an unknown version gets one listing QUIC v1 (CIDs swapped); 1199 bytes get nothing",
        .timeLimit(.minutes(1))
    )
    func versionNegotiation() async throws {
        let server = try await echoServer()
        let port = try #require(server.localAddress?.port)
        let udp = try RawUDP(serverPort: port)
        defer { udp.close() }
        let dcid = Self.random(8), quiet = Self.random(8), marker = Self.random(8)
        udp.send(Self.unsupportedVersion(1199, dcid: dcid, scid: quiet))
        udp.send(Self.unsupportedVersion(1200, dcid: dcid, scid: marker))
        // Replies keep their order on loopback: the first one answers the 1200-byte datagram.
        let reply = try #require(udp.receive(), "no Version Negotiation")
        let vn = try #require(Self.parseVersionNegotiation(reply), "not a Version Negotiation packet: \(reply.prefix(8))")
        #expect(vn.dcid == marker, "answered the 1199-byte datagram (DCID \(vn.dcid == quiet ? "of it" : "unknown"))")
        #expect(vn.scid == dcid)
        #expect(vn.versions.contains(1), "versions \(vn.versions)")
        #expect(!vn.versions.contains(0x1A2A_3A4A))
        #expect(reply.count <= 1200)
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    @Test(
        "stateless reset for an unknown CID: smaller than its trigger, none for datagrams of 22 bytes or less, rate-limited",
        .timeLimit(.minutes(1))
    )
    func statelessResetReplies() async throws {
        let server = try await echoServer()
        let port = try #require(server.localAddress?.port)
        let udp = try RawUDP(serverPort: port)
        defer { udp.close() }
        // Too small to be a 1-RTT packet with an 18-byte CID and a byte of payload: no answer. A
        // Version Negotiation sent after them comes back first, so nothing answered them.
        for n in [1, 2, 19, 20, 21, 22] { udp.send(Self.shortHeader(n)) }
        let marker = Self.random(8)
        udp.send(Self.unsupportedVersion(1200, dcid: Self.random(8), scid: marker))
        let first = try #require(udp.receive())
        #expect(Self.parseVersionNegotiation(first)?.dcid == marker, "a datagram of 22 bytes or less was answered (\(first.count) bytes)")
        for n in [23, 30, 100, 1200] {
            udp.send(Self.shortHeader(n))
            let reset = try #require(udp.receive(), "no stateless reset for \(n) bytes")
            #expect(reset.count < n && reset.count >= 21, "reset of \(reset.count) bytes for \(n)")
            #expect(reset[0] & 0xC0 == 0x40, "not a short header: \(reset[0])")
        }
        // 600 at once: at most 200 a second are answered.
        let start = Date()
        for _ in 0..<600 { udp.send(Self.shortHeader(60)) }
        let end = Self.random(8)
        udp.send(Self.unsupportedVersion(1200, dcid: Self.random(8), scid: end))
        var resets = 0
        while let d = udp.receive() {
            if Self.parseVersionNegotiation(d)?.dcid == end { break }
            resets += 1
        }
        let allowed = 200 + Int(Date().timeIntervalSince(start) * 200) + 1
        #expect(resets > 0 && resets <= allowed, "\(resets) resets for 600 datagrams (at most \(allowed))")
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    @Test(
        "a client whose server lost the connection gets a valid stateless reset and closes at once with QUICError.statelessReset",
        .timeLimit(.minutes(1))
    )
    func clientClosesOnReset() async throws {
        let server = try await echoServer()
        let addr = try #require(server.localAddress)
        let ce = try await QUICEndpoint.bind(group: group, host: "127.0.0.1", port: 0).get()
        let c = try await ce.connect(to: addr, alpn: "echo").get()
        let stream = try await c.openStream().get()
        try await stream.writeAndFlush(stream.allocator.buffer(bytes: Self.random(1000)))
        #expect(try await server.forgetConnections().get() == 1)
        // The client's next packets (more stream data) reach a server without the connection.
        let start = NIODeadline.now()
        // The reset may already have closed the stream (the client's ACKs after the first write
        // reach the forgetful server too): then this write fails, and the checks below still hold.
        _ = try? await stream.writeAndFlush(stream.allocator.buffer(bytes: Self.random(1000)))
        try await stream.closeFuture.get()
        #expect(try await c.closeError.get() == .statelessReset)
        #expect(NIODeadline.now() - start < .seconds(10), "closed by a timeout, not the reset")  // idle timeout is 60 s
        #expect(try await ce.connectionCount().get() == 0)
        #expect(QUICError.statelessReset.description.contains("stateless reset"))
        // The server still serves a new connection.
        let again = try await ce.connect(to: addr, alpn: "echo").get()
        try await again.close().get()
        try await ce.close().get()
        try await server.close().get()
        try await group.shutdownGracefully()
    }
}

/// A blocking UDP socket on 127.0.0.1 that talks to one server port; receives wait at most 5 s.
struct RawUDP {
    let fd: CInt
    let server: sockaddr_in

    init(serverPort: Int) throws {
        fd = socket(AF_INET, CInt(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw QUICError.invalidArgument("socket: \(errno)") }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var size: CInt = 4 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        var s = sockaddr_in()
        s.sin_family = sa_family_t(AF_INET)
        s.sin_port = in_port_t(UInt16(serverPort).bigEndian)
        s.sin_addr.s_addr = inet_addr("127.0.0.1")
        server = s
    }

    func send(_ bytes: [UInt8]) {
        var to = server
        _ = withUnsafePointer(to: &to) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
    }

    /// The next datagram, or nil after 5 s without one.
    func receive() -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: 2048)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n >= 0 ? Array(buf[0..<n]) : nil
    }

    func close() { _ = Glibc.close(fd) }
}
