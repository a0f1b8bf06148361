import NIOConcurrencyHelpers
import NIOCore

/// Slows down password guessing per source address (docs/protocol.md §7.10): the first
/// `freeFailures` failed logins from an address are answered at once, each later one after a
/// delay that doubles from `baseDelay` up to `maxDelay`. A success from the address, or
/// `forgetAfter` without a failure, starts it afresh. At most `capacity` addresses are tracked
/// (the stalest is forgotten first), so a flood of sources cannot grow it without bound.
///
/// Thread-safe; time is passed in (tests use their own clock).
package final class LoginFailureThrottle: Sendable {
    package struct Policy: Sendable, Equatable {
        package var freeFailures = 3
        package var baseDelay: TimeAmount = .seconds(1)
        package var maxDelay: TimeAmount = .seconds(30)
        package var forgetAfter: TimeAmount = .minutes(10)
        package var capacity = 10_000
        package init() {}
    }

    private struct Entry {
        var failures: Int
        var last: NIODeadline
    }

    package let policy: Policy
    private let entries = NIOLockedValueBox<[[UInt8]: Entry]>([:])

    package init(policy: Policy = Policy()) { self.policy = policy }

    /// Records a failed login from `source`; returns how long to wait before answering it.
    package func failed(source: [UInt8], now: NIODeadline = .now()) -> TimeAmount {
        entries.withLockedValue { entries in
            var entry = entries[source].flatMap { now - $0.last < policy.forgetAfter ? $0 : nil } ?? Entry(failures: 0, last: now)
            entry.failures += 1
            entry.last = now
            if entries[source] == nil, entries.count >= policy.capacity,
               let stalest = entries.min(by: { $0.value.last < $1.value.last })?.key {
                entries[stalest] = nil
            }
            entries[source] = entry
            return Self.delay(afterFailures: entry.failures, policy: policy)
        }
    }

    /// A login from `source` succeeded: its count starts again.
    package func succeeded(source: [UInt8]) {
        _ = entries.withLockedValue { $0.removeValue(forKey: source) }
    }

    /// Failures counted for `source` (0 once forgotten).
    package func failures(source: [UInt8], now: NIODeadline = .now()) -> Int {
        entries.withLockedValue { entries in
            guard let entry = entries[source], now - entry.last < policy.forgetAfter else { return 0 }
            return entry.failures
        }
    }

    /// Addresses tracked now (at most `policy.capacity`).
    package var trackedSources: Int { entries.withLockedValue { $0.count } }

    /// The delay for the `n`-th failure in a row (1-based).
    package static func delay(afterFailures n: Int, policy: Policy) -> TimeAmount {
        guard n > policy.freeFailures else { return .zero }
        let doublings = min(n - policy.freeFailures - 1, 30)
        let nanos = policy.baseDelay.nanoseconds.multipliedReportingOverflow(by: Int64(1) << doublings)
        if nanos.overflow { return policy.maxDelay }
        return .nanoseconds(min(nanos.partialValue, policy.maxDelay.nanoseconds))
    }
}
