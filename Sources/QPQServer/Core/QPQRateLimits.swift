/// Per-connection request and failed-login limits (docs/messaging.md §7).
package struct QPQRateLimits: Sendable {
    package var requestsPerSecond: Double = 200
    package var burst: Double = 400
    package var maxFailedLogins = 5
    package var lockoutMilliseconds: UInt64 = 10_000
    package init() {}
}
