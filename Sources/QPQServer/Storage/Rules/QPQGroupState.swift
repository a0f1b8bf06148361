import QPQProtocol

/// What a store reads of a group's row to check a request against it (docs/messaging.md §9).
package struct QPQGroupState: Sendable, Equatable {
    package var epoch: UInt64
    package var tokenHash: [UInt8]
    /// The disappearing-message timer in seconds (0: off).
    package var ttlSeconds: UInt64

    package init(epoch: UInt64, tokenHash: [UInt8], ttlSeconds: UInt64) {
        self.epoch = epoch
        self.tokenHash = tokenHash
        self.ttlSeconds = ttlSeconds
    }

    /// When a message of `kind` queued at `now` disappears (0: never; at most `Int64.max`, what
    /// both databases store). Only application messages disappear: commits and welcomes carry group state.
    package func expiresAt(kind: QPQEnvelopeKind, now: UInt64) -> UInt64 {
        guard kind == .application, ttlSeconds > 0 else { return 0 }
        let (ms, overflow) = ttlSeconds.multipliedReportingOverflow(by: 1000)
        let (at, past) = now.addingReportingOverflow(ms)
        return overflow || past ? UInt64(Int64.max) : min(at, UInt64(Int64.max))
    }
}
