import QNSPCrypto

/// Fixed memory a cell sealer or opener reuses for every cell: the inner plaintext and the nonce.
/// Raw buffers rather than arrays, so the per-cell path has no copy-on-write or exclusivity checks.
struct CellScratch {
    let plaintext: UnsafeMutableRawBufferPointer
    let nonce: UnsafeMutableRawBufferPointer

    init(cellSize: Int) {
        plaintext = .allocate(byteCount: CellLayout.innerSize(cellSize: cellSize), alignment: 16)
        plaintext.initializeMemory(as: UInt8.self, repeating: 0)
        nonce = .allocate(byteCount: AEADAlgorithm.nonceSize, alignment: 8)
        nonce.initializeMemory(as: UInt8.self, repeating: 0)
    }

    /// Wipes and frees; call once, from the owner's deinit.
    func release() {
        plaintext.initializeMemory(as: UInt8.self, repeating: 0)
        plaintext.deallocate()
        nonce.deallocate()
    }
}
