import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSPCrypto
import QNSPNIO
import QSSHSession
import QSSHTools

/// An in-process TCP echo server on 127.0.0.1 (answers a half-close with one).
final class EchoServer {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    init() throws {
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(EchoHandler()) } }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// A TCP relay that records every byte passing in both directions (what a capture on the
/// relayed link would see).
final class RecordingProxy {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: Channel
    let recorded = NIOLockedValueBox<[UInt8]>([])
    var port: Int { channel.localAddress?.port ?? 0 }

    final class Recorder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let sink: NIOLockedValueBox<[UInt8]>
        init(_ sink: NIOLockedValueBox<[UInt8]>) { self.sink = sink }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let b = unwrapInboundIn(data)
            sink.withLockedValue { $0 += b.readableBytesView }
            context.fireChannelRead(data)
        }
    }

    init(targetPort: Int) throws {
        let sink = recorded
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop)
                    .channelOption(.allowRemoteHalfClosure, value: true)
                    .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Recorder(sink)) } }
                    .connect(host: "127.0.0.1", port: targetPort)
                    .flatMapThrowing { outbound in
                        let (a, b) = GlueHandler.matchedPair()
                        try inbound.pipeline.syncOperations.addHandlers([Recorder(sink), a])
                        try outbound.pipeline.syncOperations.addHandler(b)
                    }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func contains(_ text: String) -> Bool {
        let needle = Array(text.utf8)
        let hay = recorded.withLockedValue { $0 }
        guard needle.count <= hay.count else { return false }
        return (0...(hay.count - needle.count)).contains { i in hay[i..<(i + needle.count)].elementsEqual(needle) }
    }

    func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// Blocking TCP helpers for driving forwarded ports.
enum TCP {
    /// Connects to 127.0.0.1:port; nil when refused.
    static func connect(_ port: Int) -> CInt? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 { close(fd); return nil }
        var one: CInt = 1
        setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        return fd
    }

    static func writeAll(_ fd: CInt, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    /// Reads exactly `count` bytes (nil on EOF or error first).
    static func readExactly(_ fd: CInt, _ count: Int) -> [UInt8]? {
        var out = [UInt8](), chunk = [UInt8](repeating: 0, count: max(1, count))
        while out.count < count {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, count - out.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            out += chunk[0..<n]
        }
        return out
    }

    static func readToEnd(_ fd: CInt) -> [UInt8] {
        var out = [UInt8](), chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return out }
            out += chunk[0..<n]
        }
    }

    /// Sends `data` on an open connection while reading everything that comes back, half-closing
    /// after the last byte; true when the bytes returned equal (by SHA-256) the bytes sent.
    static func echoRoundTrip(_ fd: CInt, _ data: [UInt8]) -> (ok: Bool, received: Int) {
        let writer = Thread {
            _ = writeAll(fd, data)
            shutdown(fd, CInt(SHUT_WR))
        }
        writer.start()
        let back = readToEnd(fd)
        close(fd)
        return (back.count == data.count && KeyDerivation.sha256(back) == KeyDerivation.sha256(data), back.count)
    }

    /// Deterministic test bytes: a xorshift stream, 4 bytes per step (fast enough for 200 MiB in a debug build).
    static func pattern(_ count: Int, seed: UInt32 = 1) -> [UInt8] {
        var x = seed | 1
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            var i = 0
            while i < count {
                x ^= x << 13; x ^= x >> 17; x ^= x << 5
                var v = x
                for _ in 0..<min(4, count - i) { raw[i] = UInt8(truncatingIfNeeded: v); v >>= 8; i += 1 }
            }
        }
        return out
    }
}

/// Reads a child's stderr until every marker appeared (or the child ends / 15 s pass); returns all text read.
func readStderr(of child: ChildProcess, until markers: [String]) -> String {
    var text = ""
    var chunk = [UInt8](repeating: 0, count: 4096)
    let deadline = Date().addingTimeInterval(15)
    while !markers.allSatisfy({ text.contains($0) }) && Date() < deadline {
        var p = pollfd(fd: child.stderr, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 200) >= 0 else { break }
        if p.revents == 0 { continue }
        let n = chunk.withUnsafeMutableBytes { read(child.stderr, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        text += String(decoding: chunk[0..<n], as: UTF8.self)
    }
    return text
}
