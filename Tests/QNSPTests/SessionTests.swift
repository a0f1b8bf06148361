@testable import QNSP
import QNSPCrypto
import Testing

@Suite("Established sessions")
struct SessionTests {
    @Test("data flows both ways, at payload-boundary sizes")
    func data() throws {
        let p = Pair().run()
        #expect(p.established)
        var expected: [UInt8] = []
        for n in [1, 748, 749, 750, 1498, 100_000] {
            let chunk = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n) }
            expected += chunk
            try p.clientSends(chunk)
            try p.serverSends(chunk)
        }
        #expect(p.serverReceived == expected)
        #expect(p.clientReceived == expected)
    }

    @Test("every byte on the wire comes in whole cells, handshake included", arguments: [512, 768, 1024, 4096])
    func wholeCells(cellSize: Int) throws {
        var c = QNSPConfiguration(); c.cellSize = cellSize
        let p = Pair(configuration: c).run()
        #expect(p.established)
        try p.clientSends([UInt8](repeating: 7, count: 12345))
        try p.serverSends([1])
        p.client.close(); p.pump()
        for flight in p.clientToServer + p.serverToClient {
            #expect(flight.count > 0 && flight.count % cellSize == 0, "flight of \(flight.count) bytes")
        }
        // The handshake is not told apart from data by size: each flight is a whole number of cells.
        #expect(p.clientToServer[0].count == ClearRecord.paddedSize(bodyLength: p.clientToServer[0].count - 12, cellSize: cellSize))
        let all = (p.clientToServer + p.serverToClient).flatMap { $0 }
        #expect(!containsSubsequence(all, Array("alice".utf8)), "user name visible on the wire")
    }

    @Test("rekey happens at the configured byte limit and traffic continues across it")
    func rekeyByBytes() throws {
        var c = QNSPConfiguration(); c.rekeyAfterBytes = 10_000
        let p = Pair(configuration: c).run()
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0) }
        try p.clientSends(data)
        #expect(p.serverReceived == data)
        // 100,000 bytes in 749-byte cells, a new key each time 10,000 bytes were sealed under the old one.
        #expect(p.client.sendingEpoch == 9)
        #expect(p.server.receivingEpoch == 9)
        #expect(p.serverEvents.filter { if case .peerKeyUpdated = $0 { return true }; return false }.count == 9)
        try p.serverSends([42])
        #expect(p.clientReceived == [42] && p.server.sendingEpoch == 0)
    }

    @Test("an explicit key update can ask the peer to update too")
    func requestedUpdate() throws {
        let p = Pair().run()
        try p.client.updateSendingKey(requestPeer: true)
        p.pump()
        #expect(p.client.sendingEpoch == 1 && p.server.receivingEpoch == 1)
        #expect(p.server.sendingEpoch == 1 && p.client.receivingEpoch == 1)
        try p.clientSends([1, 2, 3]); try p.serverSends([4])
        #expect(p.serverReceived == [1, 2, 3] && p.clientReceived == [4])
    }

    @Test("ping, cover traffic, half-close and close")
    func controlCells() throws {
        let p = Pair().run()
        try p.client.ping([9, 9]); p.pump()
        #expect(p.clientEvents.contains(.pong([9, 9])))
        try p.client.sendPadding(cells: 3); p.pump()
        #expect(p.serverReceived.isEmpty && p.serverError == nil)
        try p.client.sendEndOfStream(); p.pump()
        #expect(p.serverEvents.contains(.endOfStream))
        #expect(throws: QNSPError.connectionClosed) { _ = try p.client.sealData([1]) }
        try p.serverSends([5])  // the other direction still works
        #expect(p.clientReceived == [5])
        p.server.close(code: .shutdown, reason: "bye"); p.pump()
        #expect(p.clientEvents.contains(.closed(code: QNSPCloseCode.shutdown.rawValue, reason: "bye")))
        #expect(p.client.isClosed)
    }

    @Test("tampered, replayed, reordered and truncated cells close the session with a specific error")
    func connectionLevelErrors() throws {
        func established() -> Pair { Pair().run() }
        // Bit flip.
        do {
            let p = established()
            var cell = try p.client.sealData([1, 2, 3])
            cell[100] ^= 0x10
            #expect(throws: QNSPError.cellAuthenticationFailed(sequence: 0)) { _ = try p.server.receive(cell) }
            #expect(p.server.isClosed)
            #expect(throws: QNSPError.connectionClosed) { _ = try p.server.receive(cell) }
        }
        // Replay.
        do {
            let p = established()
            let cell = try p.client.sealData([1])
            _ = try p.server.receive(cell)
            #expect(throws: QNSPError.replayedCell(sequence: 0, expected: 1)) { _ = try p.server.receive(cell) }
        }
        // Reorder.
        do {
            let p = established()
            let a = try p.client.sealData([1]), b = try p.client.sealData([2])
            #expect(throws: QNSPError.reorderedCell(sequence: 1, expected: 0)) { _ = try p.server.receive(b + a) }
        }
        // Truncation, delivered in odd-sized pieces.
        do {
            let p = established()
            let cells = try p.client.sealData([UInt8](repeating: 1, count: 2000))
            let (d1, _) = try p.server.receive(Array(cells[0..<500]))
            let (d2, _) = try p.server.receive(Array(cells[500..<(cells.count - 10)]))
            #expect(d1.isEmpty && d2.count == 1498)
            #expect(throws: QNSPError.truncatedInput("a cell (758 of 768 bytes)")) { try p.server.receiveEOF() }
        }
        // Unknown cell type and oversize length (authenticated, so only a broken or hostile peer sends them).
        for (type, length, error) in [(UInt8(0x7f), 0, QNSPError.unknownCellType(0x7f)), (UInt8(1), 4000, QNSPError.invalidCellLength(4000, maximum: 749))] {
            let p = established()
            let sealer = try #require(p.client.sealer)
            var cell = [UInt8](repeating: 0, count: 768)
            try QNSPError.typed {
                try [UInt8]().withUnsafeBytes { pl in try cell.withUnsafeMutableBytes { try sealer.sealRaw(type: type, declaredLength: length, payload: pl, into: $0) } }
            }
            #expect(throws: error) { _ = try p.server.receive(cell) }
            #expect(p.server.isClosed)
        }
    }

    @Test("data before the handshake completes is refused")
    func dataTooEarly() throws {
        let p = Pair()
        try p.client.start()
        #expect(throws: QNSPError.connectionClosed) { _ = try p.client.sealData([1]) }
    }
}

func containsSubsequence(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= hay.count else { return false }
    for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return true }
    return false
}
