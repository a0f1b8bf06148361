extension QUICEndpoint {
    /// When a server makes a new client prove its address with a Retry round trip (a stateless
    /// token it must echo) before any TLS or connection state exists (docs/protocol.md §8.4).
    /// The anti-amplification limit (at most 3x the bytes received, until the address is
    /// validated) applies in every case.
    public enum RetryPolicy: Sendable, Equatable {
        /// Every new connection: one round trip more for everyone.
        case always
        /// Only while Initials without a token come faster than this many a second (a burst
        /// bigger than that is allowed once): an address-spoofing flood then costs the server one
        /// stateless Retry per packet, and ordinary connections no extra round trip.
        case underLoad(newConnectionsPerSecond: Int)
        /// Never (the handshake validates the address).
        case never
    }
}
