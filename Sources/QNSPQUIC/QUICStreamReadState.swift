import NIOCore

/// The receive side of a `QUICStreamChannel`, as a state machine: the bytes the peer sent that the
/// pipeline has not taken yet, whether the pipeline asked for more (`read()`), and the FIN. It only
/// decides what to hand over; the channel does it, and gives the peer credit for exactly the bytes
/// handed over, so a pipeline that stops reading stops the peer once the stream's window is full.
struct QUICStreamReadState {
    /// What to hand to the pipeline now.
    enum Delivery: Equatable {
        case nothing
        /// Fire these reads (in order), then `inputClosed` (or a close) if `eof`.
        case deliver([ByteBuffer], eof: Bool)
    }

    private var pending = CircularBuffer<ByteBuffer>(initialCapacity: 4)
    /// Bytes received and not handed over (no credit given for them yet).
    private(set) var pendingBytes = 0
    private(set) var finReceived = false
    private(set) var finDelivered = false
    /// The pipeline called `read()` and nothing has satisfied it yet.
    private(set) var demand = false

    /// Bytes from the peer, in stream order. Nothing can follow a FIN (ngtcp2 enforces the final size).
    mutating func received(_ bytes: ByteBuffer) {
        guard !finReceived, bytes.readableBytes > 0 else { return }
        pending.append(bytes)
        pendingBytes += bytes.readableBytes
    }

    /// The peer finished its direction.
    mutating func receivedFIN() { finReceived = true }

    /// The pipeline asked for data.
    mutating func readRequested() { demand = true }

    /// What to deliver now: all pending bytes (and the FIN after them) if the pipeline asked and
    /// is ready (`active`). A delivery satisfies the demand; the next needs another `read()`.
    mutating func next(active: Bool) -> Delivery {
        guard active, demand, !pending.isEmpty || (finReceived && !finDelivered) else { return .nothing }
        demand = false
        return takeAll()
    }

    /// Everything left, asked for or not (the stream or the connection is gone: the bytes the
    /// peer sent are not dropped while the channel closes).
    mutating func drain() -> Delivery {
        guard !pending.isEmpty || (finReceived && !finDelivered) else { return .nothing }
        return takeAll()
    }

    private mutating func takeAll() -> Delivery {
        let bytes = Array(pending)
        pending.removeAll(keepingCapacity: true)
        pendingBytes = 0
        let eof = finReceived && !finDelivered
        if eof { finDelivered = true }
        return .deliver(bytes, eof: eof)
    }
}
