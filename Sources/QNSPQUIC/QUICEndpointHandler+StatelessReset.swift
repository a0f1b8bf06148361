import NIOCore

extension QUICEndpointHandler {
    /// A short-header datagram that routes to no connection of a client endpoint may be a
    /// stateless reset (its first bytes are random, not one of our CIDs): it is fed to the client
    /// connections with that peer, and ngtcp2 acts on it only if its last 16 bytes are a reset
    /// token that peer gave us (then the connection ends at once, `QUICError.statelessReset`);
    /// anything else is discarded there. Returns whether some connection was given it.
    func deliverPossibleReset(_ datagram: ByteBuffer, from remote: SocketAddress, now: UInt64) -> Bool {
        // The smallest valid reset is 21 bytes: a short header (form bit 0, fixed bit 1).
        guard datagram.readableBytes >= 21,
            let first = datagram.getInteger(at: datagram.readerIndex, as: UInt8.self), first & 0xC0 == 0x40
        else { return false }
        let candidates = connections.values.filter { $0.conn.isClient && !$0.conn.isClosed && $0.remote == remote }
        for c in candidates {
            c.conn.receive(datagram, from: remote, now: now)
            process(c)
        }
        return !candidates.isEmpty
    }
}
