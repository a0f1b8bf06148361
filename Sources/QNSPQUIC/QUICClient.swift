import NIOCore

/// A client connection made by `QUICEndpoint.connect`: open streams (each a byte-stream `Channel`
/// of its own, e.g. for QNSP) and close it.
public struct QUICClient: Sendable {
    let connection: QUICEndpointConnection
    /// The ALPN the server accepted.
    public let alpn: String

    /// Opens a bidirectional stream; `initializer` adds handlers to its channel.
    public func openStream(
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }
    ) -> EventLoopFuture<Channel> {
        let c = connection
        // On the loop (e.g. in a callback of the handshake's completion) the stream opens at once:
        // its first bytes then leave in the same flight as the client's TLS Finished.
        if c.loop.inEventLoop { return c.openStream(initializer: initializer) }
        return c.loop.flatSubmit { c.openStream(initializer: initializer) }
    }

    /// Closes the connection (CONNECTION_CLOSE with application error 0). Completes when closed.
    public func close() -> EventLoopFuture<Void> {
        let c = connection
        return c.loop.flatSubmit {
            if c.conn.isClosed { return c.loop.makeSucceededVoidFuture() }
            let p = c.loop.makePromise(of: Void.self)
            c.closeWaiters.append(p)
            // What the streams queued last (a session's final bytes, its FIN) leaves before the close.
            c.endpoint.process(c)
            c.conn.close(code: 0)
            c.endpoint.process(c)
            return p.futureResult
        }
    }

    /// Why the connection closed (nil while open or after a clean close).
    public var closeError: EventLoopFuture<QUICError?> {
        let c = connection
        return c.loop.submit { c.closeError }
    }
}
