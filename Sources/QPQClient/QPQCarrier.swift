/// What carries a qpq/1 connection (docs/messaging.md §1.1): QNSP over TCP, QNSP on one stream of
/// a QUIC connection (ALPN `qpq/1`), or QUIC first with TCP as the fallback when the QUIC
/// handshake does not complete within a short deadline.
package enum QPQCarrier: String, Sendable, CaseIterable {
    case tcp, quic, auto
}
