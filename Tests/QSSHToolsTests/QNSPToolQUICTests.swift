import Foundation
import QNSPCrypto
import Testing

extension ToolSuites.QNSPToolTests {
    @Test("qnsp serve --quic / qnsp connect --transport quic: bytes echoed intact over QUIC (ALPN qnsp/1); without --quic, quic fails and auto falls back")
    func echoOverQUIC() throws {
        let dir = try setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try ToolSuites.ServeProcess(dir: dir, extra: ["--echo", "--quic"])
        defer { server.stop() }
        #expect(server.waitForLog("QUIC on UDP 127.0.0.1:\(server.port) (ALPN qnsp/1)"), "\(server.log)")
        var blob = Data(count: 2 << 20)
        for i in 0..<blob.count { blob[i] = UInt8(truncatingIfNeeded: i &* 7919 >> 3) }
        let echoed = try connect(dir, port: server.port, extra: ["-v", "--accept-new", "--transport", "quic"], stdin: blob)
        #expect(echoed.status == 0, "\(echoed.stderr)")
        #expect(echoed.stderr.contains("over QUIC (UDP, ALPN qnsp/1)"), "\(echoed.stderr)")
        #expect(echoed.stdout.count == blob.count, "echoed \(echoed.stdout.count) of \(blob.count) bytes; stderr: \(echoed.stderr)")
        #expect(KeyDerivation.sha256([UInt8](echoed.stdout)) == KeyDerivation.sha256([UInt8](blob)))

        let tcpOnlyDir = try setup()
        defer { try? FileManager.default.removeItem(atPath: tcpOnlyDir) }
        let tcpOnly = try ToolSuites.ServeProcess(dir: tcpOnlyDir)
        defer { tcpOnly.stop() }
        let failed = try connect(tcpOnlyDir, port: tcpOnly.port, extra: ["--accept-new", "--transport", "quic"], stdin: Data("x".utf8))
        #expect(failed.status != 0 && failed.stderr.contains("over QUIC"), "\(failed.stderr)")
        let auto = try connect(tcpOnlyDir, port: tcpOnly.port, extra: ["-v", "--accept-new", "--transport", "auto"], stdin: Data("fine\n".utf8))
        #expect(auto.status == 0 && String(decoding: auto.stdout, as: UTF8.self) == "fine\n", "\(auto.stderr)")
        #expect(auto.stderr.contains("using TCP"), "\(auto.stderr)")
        let bad = try connect(tcpOnlyDir, port: tcpOnly.port, extra: ["--transport", "udp"], stdin: Data())
        #expect(bad.status != 0 && bad.stderr.contains("--transport must be tcp, quic or auto, not 'udp'"), "\(bad.stderr)")
    }
}
