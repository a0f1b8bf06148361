import CNGTCP2
import Crypto
import Foundation
import NIOCore
import Testing

@testable import QNSPQUIC

/// The datagram runs `QUICConnection.flush(segments:)` makes for UDP segmentation offload,
/// checked without sockets: two connections wired together in memory.
@Suite("QUIC datagram runs for GSO (sans I/O)")
struct QUICSegmentationTests {
    /// Cuts a run into its datagrams as the kernel would (every `segmentSize` bytes), checking
    /// the run's bounds: at least two packets, at most `limit` and 64 KiB. (A packet of another
    /// size inside a run would be cut in the wrong place; the receiver then drops the pieces and
    /// the sender retransmits, so the hash check below alone would not see it. The first byte
    /// cannot tell either: ngtcp2 greases QUIC's fixed bit, RFC 9287.)
    static func split(_ d: QUICConnection.Datagram, limit: Int) -> [ByteBuffer] {
        guard let size = d.segmentSize else { return [d.bytes] }
        #expect(limit > 1, "a run although segments = 1")
        #expect(d.bytes.readableBytes > size, "a run of one packet")
        #expect(d.bytes.readableBytes <= 65_000)
        var rest = d.bytes
        var out: [ByteBuffer] = []
        while rest.readableBytes > 0, let one = rest.readSlice(length: min(size, rest.readableBytes)) {
            out.append(one)
        }
        #expect(out.count <= limit)
        return out
    }

    @Test("flush(segments:) gathers equal-size packets into runs (1: never); cut apart they carry 2 MiB intact", arguments: [64, 1])
    func runsCarryAStream(segments: Int) throws {
        let serverAddress = try SocketAddress(ipAddress: "127.0.0.1", port: 4433)
        let clientAddress = try SocketAddress(ipAddress: "127.0.0.1", port: 5544)
        let pem = try QUICCredentials.generateSelfSigned()
        let context = try QUICServerContext(
            credentials: try QUICCredentials(certificatePEM: pem.certificate, keyPEM: pem.key),
            alpns: ["echo"], retry: .never, parameters: QUICConnection.Parameters())
        let client = try QUICConnection(
            clientTo: serverAddress, localAddress: clientAddress, alpn: "echo", credentials: try QUICCredentials())
        var server: QUICConnection?
        var payload = ByteBuffer()
        var source = ByteSource(state: UInt64(segments))
        source.next(2 << 20, into: &payload)
        let sentHash = SHA256.hash(data: Array(payload.readableBytesView))
        var receivedHash = SHA256()
        var received = 0, finished = false, runs = 0, stream: Int64?
        // Real timers (pacing, acknowledgements) drive the loop; a loaded 2-core machine needs time.
        let deadline = Date().addingTimeInterval(120)
        while !finished && Date() < deadline {
            var moved = false
            for d in client.flush(segments: segments) {
                if d.segmentSize != nil { runs += 1 }
                for one in Self.split(d, limit: segments) {
                    moved = true
                    if let server {
                        server.receive(one, from: clientAddress)
                    } else if case .accept(let conn, _) = context.admit(one, from: clientAddress, local: serverAddress, now: cngtcp2_now()) {
                        server = conn
                        conn.receive(one, from: clientAddress)
                    }
                }
            }
            for event in client.takeEvents() {
                if case .handshakeCompleted = event {
                    let id = try client.openStream()
                    client.write(stream: id, payload)
                    client.finish(stream: id)
                    stream = id
                }
                if case .closed(let error) = event { Issue.record("client closed: \(String(describing: error))") }
            }
            guard let s = server else { continue }
            for event in s.takeEvents() {
                if case .streamData(let id, let bytes, let fin) = event {
                    bytes.withUnsafeReadableBytes { receivedHash.update(bufferPointer: $0) }
                    received += bytes.readableBytes
                    s.consumed(stream: id, count: bytes.readableBytes)
                    if fin { finished = true }
                }
            }
            for d in s.flush(segments: segments) {
                for one in Self.split(d, limit: segments) {
                    moved = true
                    client.receive(one, from: serverAddress)
                }
            }
            if !moved {  // waiting for a timer (pacing, acks): run the ones that are due
                let now = cngtcp2_now()
                if let e = client.expiry, e <= now { client.handleTimeout(now: now) }
                if let e = s.expiry, e <= now { s.handleTimeout(now: now) }
            }
        }
        #expect(stream != nil)
        #expect(finished, "the stream did not finish in the deadline: \(received) of \(payload.readableBytes) bytes")
        #expect(received == payload.readableBytes)
        #expect(receivedHash.finalize() == sentHash)
        if segments > 1 { #expect(runs > 10, "only \(runs) runs: packets were not gathered") } else { #expect(runs == 0) }
    }
}
