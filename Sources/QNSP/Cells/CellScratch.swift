import QNSPCrypto

/// Fixed memory a cell sealer or opener reuses for every cell: the inner plaintext, the nonce and
/// the IV it is made from. Raw buffers rather than arrays, so the per-cell path has no
/// copy-on-write, exclusivity checks or reference counting.
struct CellScratch {
    let plaintext: UnsafeMutableRawBufferPointer
    let nonce: UnsafeMutableRawBufferPointer
    let iv: UnsafeMutableRawBufferPointer

    init(cellSize: Int) {
        plaintext = .allocate(byteCount: CellLayout.innerSize(cellSize: cellSize), alignment: 16)
        plaintext.initializeMemory(as: UInt8.self, repeating: 0)
        nonce = .allocate(byteCount: AEADAlgorithm.nonceSize, alignment: 8)
        nonce.initializeMemory(as: UInt8.self, repeating: 0)
        iv = .allocate(byteCount: AEADAlgorithm.nonceSize, alignment: 8)
        iv.initializeMemory(as: UInt8.self, repeating: 0)
    }

    /// Sets the IV (from a traffic secret).
    func setIV(_ bytes: [UInt8]) {
        precondition(bytes.count == iv.count, "internal: IV of the wrong size")
        iv.copyBytes(from: bytes)
    }

    /// nonce = iv xor (0^4 || sequence as 8 big-endian bytes), written into `nonce`.
    @inline(__always)
    func makeNonce(sequence: UInt64) {
        nonce.storeBytes(of: iv.load(fromByteOffset: 0, as: UInt32.self), toByteOffset: 0, as: UInt32.self)
        let tail = iv.loadUnaligned(fromByteOffset: 4, as: UInt64.self) ^ sequence.bigEndian
        nonce.storeBytes(of: tail, toByteOffset: 4, as: UInt64.self)
    }

    /// Wipes and frees; call once, from the owner's deinit.
    func release() {
        ConstantTime.wipe(plaintext)
        ConstantTime.wipe(iv)
        plaintext.deallocate()
        nonce.deallocate()
        iv.deallocate()
    }
}
