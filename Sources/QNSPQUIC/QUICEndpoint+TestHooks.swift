import NIOCore

extension QUICEndpoint {
    /// Test hook: the endpoint forgets all its connections silently (as a server that lost its
    /// state but kept its reset secret), so that their peers' next packets get stateless resets
    /// (docs/protocol.md §8.4). Returns how many connections it dropped.
    package func forgetConnections() -> EventLoopFuture<Int> {
        let h = handler
        return channel.eventLoop.submit { h.forgetConnections() }
    }
}
