import QNSPCrypto

/// Opens incoming cells for one direction, enforcing strict sequence order.
///
/// Sequence numbers are implicit (the stream is ordered), so a replayed, reordered
/// or modified cell fails authentication. On failure the opener tries the nearby
/// sequence numbers to say which it was: a replay, a reorder, or plain corruption.
public final class CellOpener {
    public let cellSize: Int
    public let algorithm: AEADAlgorithm
    public private(set) var secret: TrafficSecret
    public private(set) var sequence: UInt64 = 0
    /// How far back and ahead a failed cell is matched to diagnose replay or reorder.
    public static let diagnosisWindow: UInt64 = 32

    private let cipher: AEADCipher
    private let scratch: CellScratch
    private var nonce: UnsafeMutableRawBufferPointer { scratch.nonce }
    private var plaintext: UnsafeMutableRawBufferPointer { scratch.plaintext }

    public init(algorithm: AEADAlgorithm, secret: TrafficSecret, cellSize: Int) throws(QNSPError) {
        self.cellSize = cellSize
        self.algorithm = algorithm
        // An own copy: the update wipes it in place, which must not reach another holder.
        self.secret = TrafficSecret(secret: SecretBytes(copying: secret.secret), epoch: secret.epoch)
        do { cipher = try AEADCipher(algorithm: algorithm, key: secret.key) } catch { throw .keyMaterial("\(error)") }
        scratch = CellScratch(cellSize: cellSize)
        scratch.setIV(secret.iv)
    }

    deinit { scratch.release() }

    public var maxPayload: Int { CellLayout.maxPayload(cellSize: cellSize) }

    /// Opens one cell (exactly `cellSize` bytes) and hands its type and payload to `body`.
    /// The payload pointer is valid only during the call.
    public func open<R>(
        cell: UnsafeRawBufferPointer,
        _ body: (UInt8, UnsafeRawBufferPointer) throws(QNSPError) -> R
    ) throws(QNSPError) -> R {
        guard cell.count == cellSize else { throw .truncatedInput("a cell") }
        guard sequence < CellSealer.maxCellsPerKey else { throw .sequenceExhausted }
        scratch.makeNonce(sequence: sequence)
        do { try cipher.open(nonce: UnsafeRawBufferPointer(nonce), sealed: cell, into: plaintext) } catch { throw diagnose(cell) }
        sequence += 1
        let type = plaintext[0]
        let length = Int(plaintext[1]) << 8 | Int(plaintext[2])
        guard length <= maxPayload else { throw .invalidCellLength(length, maximum: maxPayload) }
        return try body(type, UnsafeRawBufferPointer(rebasing: plaintext[CellLayout.headerSize..<(CellLayout.headerSize + length)]))
    }

    /// Switches to the peer's next sending secret (after a `.keyUpdate` cell).
    public func updateKey() throws(QNSPError) {
        let next = secret.next
        do { try cipher.rekey(next.key) } catch { throw .keyMaterial("\(error)") }
        scratch.setIV(next.iv)
        secret.wipe()  // the old epoch's secret is gone for good: earlier cells stay unreadable
        secret = next
        sequence = 0
    }

    private func diagnose(_ cell: UnsafeRawBufferPointer) -> QNSPError {
        var trial = [UInt8](repeating: 0, count: plaintext.count)
        let probe = UnsafeMutableRawBufferPointer.allocate(byteCount: AEADAlgorithm.nonceSize, alignment: 8)
        defer { probe.deallocate() }
        func opens(at seq: UInt64) -> Bool {
            CellSealer.nonce(iv: Array(UnsafeRawBufferPointer(scratch.iv)), sequence: seq, into: probe)
            return trial.withUnsafeMutableBytes { p in (try? cipher.open(nonce: UnsafeRawBufferPointer(probe), sealed: cell, into: p)) != nil }
        }
        for d in 1...Self.diagnosisWindow {
            if d <= sequence, opens(at: sequence - d) { return .replayedCell(sequence: sequence - d, expected: sequence) }
            if opens(at: sequence + d) { return .reorderedCell(sequence: sequence + d, expected: sequence) }
        }
        return .cellAuthenticationFailed(sequence: sequence)
    }
}
