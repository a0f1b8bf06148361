import QNSPCrypto

/// Seals outgoing cells for one direction: fixed size, encrypted header, zero
/// padding, nonce = IV xor sequence number. Owns the sending key and its updates.
public final class CellSealer {
    public let cellSize: Int
    public let algorithm: AEADAlgorithm
    public private(set) var secret: TrafficSecret
    public private(set) var sequence: UInt64 = 0
    /// Payload bytes sealed under the current key.
    public private(set) var bytesUnderCurrentKey: UInt64 = 0
    /// Cells may use one key at most this many times before an update is forced.
    public static let maxCellsPerKey: UInt64 = 1 << 32

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

    /// Seals one cell into `out` (exactly `cellSize` bytes).
    public func seal(type: CellType, payload: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) throws(QNSPError) {
        try sealRaw(type: type.rawValue, declaredLength: payload.count, payload: payload, into: out)
    }

    /// Seals a cell with an arbitrary type byte and declared length (tests use it to forge bad cells).
    public func sealRaw(type: UInt8, declaredLength: Int, payload: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) throws(QNSPError) {
        precondition(out.count == cellSize, "internal: cell output buffer has the wrong size")
        guard payload.count <= maxPayload else { throw .invalidCellLength(payload.count, maximum: maxPayload) }
        guard sequence < Self.maxCellsPerKey else { throw .sequenceExhausted }
        let inner = plaintext.count
        let p = plaintext
        p[0] = type
        p[1] = UInt8(truncatingIfNeeded: declaredLength >> 8)
        p[2] = UInt8(truncatingIfNeeded: declaredLength)
        if payload.count > 0 {
            UnsafeMutableRawBufferPointer(rebasing: p[3..<(3 + payload.count)]).copyMemory(from: payload)
        }
        let padStart = 3 + payload.count
        if padStart < inner {
            UnsafeMutableRawBufferPointer(rebasing: p[padStart..<inner]).initializeMemory(as: UInt8.self, repeating: 0)
        }
        scratch.makeNonce(sequence: sequence)
        do {
            try cipher.seal(nonce: UnsafeRawBufferPointer(nonce), plaintext: UnsafeRawBufferPointer(p), into: out)
        } catch {
            throw .keyMaterial("AEAD seal failed")
        }
        sequence += 1
        bytesUnderCurrentKey += UInt64(payload.count)
    }

    /// Seals one cell and returns it as an array.
    public func seal(type: CellType, payload: [UInt8]) throws(QNSPError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: cellSize)
        do {
            try payload.withUnsafeBytes { p in try out.withUnsafeMutableBytes { o in try seal(type: type, payload: p, into: o) } }
        } catch let e as QNSPError { throw e } catch { throw .keyMaterial("\(error)") }
        return out
    }

    /// Switches to the next sending secret. Call right after sealing a `.keyUpdate` cell.
    public func updateKey() throws(QNSPError) {
        let next = secret.next
        do { try cipher.rekey(next.key) } catch { throw .keyMaterial("\(error)") }
        scratch.setIV(next.iv)
        secret.wipe()  // the old epoch's secret is gone for good: earlier cells stay unreadable
        secret = next
        sequence = 0
        bytesUnderCurrentKey = 0
    }

    /// nonce = iv xor (0^4 || sequence as 8 big-endian bytes).
    static func nonce(iv: [UInt8], sequence: UInt64, into nonce: UnsafeMutableRawBufferPointer) {
        for i in 0..<4 { nonce[i] = iv[i] }
        for i in 0..<8 { nonce[4 + i] = iv[4 + i] ^ UInt8(truncatingIfNeeded: sequence >> UInt64(56 - 8 * i)) }
    }
}
