import QNSP
import QNSPCrypto

/// The cell path alone, on one thread, no sockets: a sender's `sealData` of 64 KiB chunks and a
/// receiver's `receive` of the cells, for profiling (valgrind --tool=callgrind) and for the
/// per-cell cost apart from TCP.
enum CellPathBench {
    /// Returns (seal MB/s, open MB/s) over `total` bytes of 64 KiB writes with `cellSize` cells.
    static func run(
        total: Int,
        cellSize: Int,
        host: HostKeyPair,
        user: UserKeyPair
    ) throws -> (seal: Double, open: Double) {
        var configuration = QNSPConfiguration()
        configuration.cellSize = cellSize
        let client = QNSPConnection(
            client: .init(username: "bench", user: user, pinnedHostKey: host.publicKey),
            configuration: configuration
        )
        let server = QNSPConnection(server: .init(hostKeys: [host]) { _, _ in .accept }, configuration: configuration)
        try client.start()
        for _ in 0..<4 {
            let c = client.takeOutbound()
            if !c.isEmpty, case .authorizationRequired? = try server.receive(c).events.last {
                _ = try server.completeAuthorization(.accept)
            }
            let s = server.takeOutbound()
            if !s.isEmpty { _ = try client.receive(s) }
        }
        guard client.isEstablished, server.isEstablished else { throw BenchError("cell bench: no session") }
        let chunk = [UInt8](repeating: 0xa5, count: 64 * 1024)
        var sealed = [UInt8](repeating: 0, count: client.maxSealedSize(forDataCount: chunk.count))
        var sink = [UInt8](repeating: 0, count: chunk.count + 4096)
        var sealTime: UInt64 = 0
        var openTime: UInt64 = 0
        var done = 0
        while done < total {
            let t0 = Clock.now
            let n = try chunk.withUnsafeBytes { src in
                try sealed.withUnsafeMutableBytes { dst in try client.sealData(src, into: dst) }
            }
            let t1 = Clock.now
            var got = 0
            try sealed.withUnsafeBytes { raw in
                try sink.withUnsafeMutableBytes { out in
                    _ = try server.receive(UnsafeRawBufferPointer(rebasing: raw[0..<n])) { piece in
                        UnsafeMutableRawBufferPointer(rebasing: out[got..<(got + piece.count)]).copyMemory(from: piece)
                        got += piece.count
                    }
                }
            }
            let t2 = Clock.now
            guard got == chunk.count else { throw BenchError("cell bench: \(got) of \(chunk.count) bytes came out") }
            sealTime += t1 - t0
            openTime += t2 - t1
            done += chunk.count
        }
        return (Double(done) / (Double(sealTime) / 1e9) / 1e6, Double(done) / (Double(openTime) / 1e9) / 1e6)
    }
}
