import NIOCore

/// Bytes written to one QUIC stream and not yet acknowledged. ngtcp2 does not copy stream data:
/// it keeps pointers to what it sent until the peer acknowledges it, so each write's buffer is kept
/// (not copied) in a chunk until the acknowledged offset passes its end. A `ByteBuffer`'s storage
/// stays at its address while a chunk holds it: nothing writes through the chunk's copy, and a
/// writer holding another copy gets storage of its own (copy-on-write).
struct QUICSendBuffer {
    struct Chunk {
        var bytes: ByteBuffer?  // nil once acknowledged (the storage is released)
        let base: UnsafeRawBufferPointer
        let start: UInt64  // stream offset of base[0]
        var end: UInt64 { start + UInt64(base.count) }
    }

    private(set) var chunks: [Chunk] = []
    private(set) var chunkHead = 0  // chunks before it were freed
    /// Offset of the next byte to hand to ngtcp2, of the end of what was written, and of what is acknowledged.
    private(set) var sentOffset: UInt64 = 0
    private(set) var endOffset: UInt64 = 0
    private(set) var ackedOffset: UInt64 = 0
    var finQueued = false
    var finSent = false

    /// Bytes held (unsent + unacknowledged).
    var buffered: UInt64 { endOffset - ackedOffset }
    var hasUnsent: Bool { sentOffset < endOffset || (finQueued && !finSent) }

    mutating func append(_ bytes: ByteBuffer) {
        guard bytes.readableBytes > 0 else { return }
        // The pointer outlives the closure on purpose: the chunk holds `bytes` (see the type's comment).
        let base = bytes.withUnsafeReadableBytes { $0 }
        chunks.append(Chunk(bytes: bytes, base: base, start: endOffset))
        endOffset += UInt64(base.count)
    }

    /// The contiguous unsent bytes starting at `sentOffset` (stable until acknowledged).
    func unsent() -> UnsafeRawBufferPointer {
        var i = chunkHead
        while i < chunks.count {
            let c = chunks[i]
            if sentOffset >= c.start && sentOffset < c.end {
                let from = Int(sentOffset - c.start)
                return UnsafeRawBufferPointer(rebasing: c.base[from...])
            }
            i += 1
        }
        return UnsafeRawBufferPointer(start: nil, count: 0)
    }

    mutating func markSent(_ n: Int) { sentOffset = min(endOffset, sentOffset + UInt64(max(0, n))) }

    mutating func acknowledge(upTo offset: UInt64) {
        ackedOffset = max(ackedOffset, min(offset, endOffset))
        while chunkHead < chunks.count && chunks[chunkHead].end <= ackedOffset {
            chunks[chunkHead].bytes = nil
            chunkHead += 1
        }
        if chunkHead > 64 && chunkHead * 2 > chunks.count {
            chunks.removeFirst(chunkHead)
            chunkHead = 0
        }
    }

    /// Releases every chunk (the stream closed or the connection went away).
    mutating func release() {
        chunks.removeAll()
        chunkHead = 0
    }
}
