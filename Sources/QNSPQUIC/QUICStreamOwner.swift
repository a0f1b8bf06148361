import NIOCore

/// What a `QUICStreamChannel` asks of the connection its stream belongs to (`QUICEndpointConnection`;
/// tests put a recorder here). Everything is called on the endpoint's event loop.
protocol QUICStreamOwner: AnyObject {
    /// Queues bytes on the stream (kept, not copied, until acknowledged).
    func streamWrite(_ id: Int64, _ bytes: ByteBuffer)
    /// Ends this side's direction (FIN) after the bytes queued so far.
    func streamFinish(_ id: Int64)
    /// The channel's pipeline took `count` bytes: give the peer that much more credit.
    func streamConsumed(_ id: Int64, count: Int)
    /// Bytes queued on the stream and not yet acknowledged.
    func streamBuffered(_ id: Int64) -> UInt64
    /// The channel closed: the stream is no longer delivered to it (what it queued still goes out).
    func streamChannelClosed(_ id: Int64)
    /// The channel's initializer failed: reset the stream.
    func streamFailed(_ id: Int64)
    /// Sends what was queued, soon (once per event-loop tick).
    func flushSoon()
}
