import Foundation
import Testing

extension ToolSuites.ForwardingTests {
    @Test("-L, -R 0 and -D (SOCKS5) over -o Transport=quic move 1 MiB both ways each (the light twin of the TCP forwards test)")
    func forwardsOverQUIC() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try q.start(dir)
        defer { server.stop() }
        #expect(server.waitForLog("QUIC on UDP"), "\(server.log)")
        let echo = try EchoServer()
        defer { echo.stop() }
        let (client, text) = try startForwarder(dir, port: server.port, [
            "-o", "Transport=quic", "-L", "0:127.0.0.1:\(echo.port)", "-R", "0:127.0.0.1:\(echo.port)", "-D", "0",
        ], markers: ["for remote forward", "for SOCKS proxy", "for local forward"])
        defer { stop(client) }
        #expect(text.contains("over QUIC (UDP, ALPN qssh/1)"), "\(text)")
        let local = try #require(allocated(text, "local forward to 127.0.0.1:\(echo.port)"), "\(text)")
        let remote = try #require(allocated(text, "remote forward to 127.0.0.1:\(echo.port)"), "\(text)")
        let socks = try #require(allocated(text, "SOCKS proxy"), "\(text)")
        let blob = TCP.pattern(1 << 20, seed: 11)
        let l = TCP.echoRoundTrip(try #require(TCP.connect(local)), blob)
        #expect(l.ok, "-L returned \(l.received) of \(blob.count) bytes")
        let r = TCP.echoRoundTrip(try #require(TCP.connect(remote)), blob)
        #expect(r.ok, "-R returned \(r.received) of \(blob.count) bytes")
        let proxied = try #require(socks5(socks, host: [127, 0, 0, 1], type: 1, targetPort: echo.port))
        #expect(proxied.1 == 0)
        let d = TCP.echoRoundTrip(proxied.0, blob)
        #expect(d.ok, "-D returned \(d.received) of \(blob.count) bytes")
    }
}
