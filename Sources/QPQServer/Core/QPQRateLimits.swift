/// Per-connection request and failed-login limits, and the per-account blob limits (docs/messaging.md §6.4, §7).
package struct QPQRateLimits: Sendable {
    package var requestsPerSecond: Double = 200
    package var burst: Double = 400
    package var maxFailedLogins = 5
    package var lockoutMilliseconds: UInt64 = 10_000
    /// Largest blob (encrypted bytes) one `BlobCreate` may reserve.
    package var maxBlobSize: UInt64 = 128 * 1024 * 1024
    /// Most bytes of unexpired blobs one account may hold.
    package var blobQuota: UInt64 = 1024 * 1024 * 1024
    /// Most blobs one account may create per rolling hour.
    package var blobsPerHour = 60
    /// A blob is deleted this long after it was created (complete or not).
    package var blobLifetimeMilliseconds: UInt64 = 7 * 24 * 3600 * 1000
    package init() {}
}
