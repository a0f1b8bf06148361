/// Writability of a `QUICStreamChannel`: unwritable once more than `high` bytes are queued on the
/// stream (written and not yet acknowledged by the peer, or not yet flushed), writable again at
/// `low` or less. The hysteresis keeps a producer from flapping at the mark.
struct QUICStreamWritability {
    let high: UInt64
    let low: UInt64
    private(set) var isWritable = true

    init(high: UInt64, low: UInt64) {
        precondition(low <= high, "the low watermark is above the high one")
        self.high = high
        self.low = low
    }

    /// The new writability when `buffered` bytes are queued, nil when it did not change.
    mutating func update(buffered: UInt64) -> Bool? {
        if isWritable && buffered > high {
            isWritable = false
            return false
        }
        if !isWritable && buffered <= low {
            isWritable = true
            return true
        }
        return nil
    }
}
