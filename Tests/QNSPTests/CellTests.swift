import QNSP
import QNSPCrypto
import Testing

@Suite("Cells")
struct CellTests {
    static let secret = TrafficSecret(secret: SecretBytes(copying: [UInt8](repeating: 0x42, count: 32)))

    func pair(_ cipher: AEADAlgorithm = .aes256GCM, cellSize: Int = 768) throws -> (CellSealer, CellOpener) {
        (try CellSealer(algorithm: cipher, secret: Self.secret, cellSize: cellSize),
         try CellOpener(algorithm: cipher, secret: Self.secret, cellSize: cellSize))
    }

    func open(_ opener: CellOpener, _ cell: [UInt8]) throws(QNSPError) -> (UInt8, [UInt8]) {
        try QNSPError.typed {
            try cell.withUnsafeBytes { raw in try opener.open(cell: raw) { t, p in (t, Array(p)) } }
        }
    }

    @Test("cells round-trip at every payload size boundary, both ciphers", arguments: AEADAlgorithm.allCases)
    func roundTrip(cipher: AEADAlgorithm) throws {
        let (s, o) = try pair(cipher)
        for n in [0, 1, 748, 749] {
            let payload = [UInt8](repeating: UInt8(n & 0xff), count: n)
            let cell = try s.seal(type: .data, payload: payload)
            #expect(cell.count == 768)
            let (t, p) = try open(o, cell)
            #expect(t == CellType.data.rawValue && p == payload)
        }
        #expect(throws: QNSPError.invalidCellLength(750, maximum: 749)) { _ = try s.seal(type: .data, payload: [UInt8](repeating: 0, count: 750)) }
    }

    @Test("every single-bit flip of a cell is detected")
    func everyBitFlip() throws {
        let (s, _) = try pair()
        let cell = try s.seal(type: .data, payload: Array("attack at dawn".utf8))
        for bit in 0..<(cell.count * 8) {
            var bad = cell
            bad[bit / 8] ^= 1 << UInt8(bit % 8)
            let o = try CellOpener(algorithm: .aes256GCM, secret: Self.secret, cellSize: 768)
            #expect(throws: QNSPError.cellAuthenticationFailed(sequence: 0)) { _ = try open(o, bad) }
        }
    }

    @Test("replayed and reordered cells are named as such")
    func replayAndReorder() throws {
        let (s, o) = try pair()
        let c0 = try s.seal(type: .data, payload: [0]), c1 = try s.seal(type: .data, payload: [1]), c2 = try s.seal(type: .data, payload: [2])
        _ = try open(o, c0)
        #expect(throws: QNSPError.replayedCell(sequence: 0, expected: 1)) { _ = try open(o, c0) }
        #expect(throws: QNSPError.reorderedCell(sequence: 2, expected: 1)) { _ = try open(o, c2) }
        _ = try open(o, c1)
        _ = try open(o, c2)
    }

    @Test("an authenticated cell that declares an oversize length is refused")
    func oversizeLength() throws {
        let (s, o) = try pair()
        var cell = [UInt8](repeating: 0, count: 768)
        try QNSPError.typed {
            try [UInt8]([1, 2, 3]).withUnsafeBytes { p in
                try cell.withUnsafeMutableBytes { out in try s.sealRaw(type: 1, declaredLength: 5000, payload: p, into: out) }
            }
        }
        #expect(throws: QNSPError.invalidCellLength(5000, maximum: 749)) { _ = try open(o, cell) }
    }

    @Test("known-answer: cell bytes for a fixed secret are stable (wire format check)")
    func cellKnownAnswer() throws {
        let (s, _) = try pair()
        let cell = try s.seal(type: .data, payload: Array("qnsp".utf8))
        #expect(hex(Array(cell.suffix(16))) == CellTests.expectedTag, "tag \(hex(Array(cell.suffix(16))))")
        #expect(hex(Array(cell.prefix(8))) == CellTests.expectedPrefix, "prefix \(hex(Array(cell.prefix(8))))")
    }
    /// From scripts/kat.py, an independent Python implementation of the cell format.
    static let expectedTag = "84c18a8882ecdf35a4d4620c98962453"
    static let expectedPrefix = "ccab3adab9f5f55c"
}
