import Foundation
import QOPAQUE
import QPQProtocol

/// What every connection of one qpqd shares: the store, the OPAQUE server setup and a clock.
package struct QPQServerContext: Sendable {
    package let store: any QPQStore
    package let opaque: OPAQUEServer
    /// Unix time in milliseconds (injected for tests of timers and rate limits).
    package let clock: @Sendable () -> UInt64
    package var limits: QPQRateLimits

    package init(store: any QPQStore, opaque: OPAQUEServer, limits: QPQRateLimits = QPQRateLimits(),
                 clock: @escaping @Sendable () -> UInt64 = QPQServerContext.wallClock) {
        self.store = store
        self.opaque = opaque
        self.limits = limits
        self.clock = clock
    }

    package static let wallClock: @Sendable () -> UInt64 = {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec / 1_000_000)
    }
}
