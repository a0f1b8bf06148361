import QPQProtocol

/// Whether an account may create a blob (docs/messaging.md §6.4): its size, the account's quota
/// of live blob bytes and its rate of creations per hour. Each store reads the inputs in the
/// transaction that inserts the blob.
package enum QPQBlobQuota {
    /// The rate's window: one hour, in milliseconds.
    package static let window: UInt64 = 3_600_000

    /// A blob has at least 1 byte and at most `limits.maxBlobSize`.
    package static func checkSize(_ size: UInt64, limits: QPQRateLimits) throws(QPQServiceError) {
        guard size >= 1 else { throw QPQServiceError(.malformed, "size: a blob has at least 1 byte") }
        guard size <= limits.maxBlobSize else {
            throw QPQServiceError(.tooLarge, "this server takes blobs of at most \(limits.maxBlobSize) bytes, not \(size)",
                                  detail: limits.maxBlobSize)
        }
    }

    /// The creations that count against the rate are those after this time.
    package static func windowStart(now: UInt64) -> UInt64 { now >= window ? now - window : 0 }

    /// Admits a blob of `size` bytes at `now` for an account with `used` live bytes whose
    /// creations after ``windowStart(now:)`` are `recent` (ascending, at most
    /// `limits.blobsPerHour` of them are needed). Returns the new blob's state.
    package static func admit(size: UInt64, used: UInt64, recent: [UInt64], now: UInt64, limits: QPQRateLimits) throws(QPQServiceError)
        -> QPQBlobInfo {
        guard size <= limits.blobQuota, used <= limits.blobQuota - size else {
            let left = limits.blobQuota > used ? limits.blobQuota - used : 0
            throw QPQServiceError(.limitExceeded, "blob quota: \(used) of \(limits.blobQuota) bytes in use, \(left) left", detail: left)
        }
        if recent.count >= limits.blobsPerHour, let oldest = recent.first {
            let end = oldest.addingReportingOverflow(window)
            let wait = end.overflow ? UInt64.max : (end.partialValue > now ? end.partialValue - now : 0)
            throw QPQServiceError(.rateLimited, "at most \(limits.blobsPerHour) blobs per hour per account", detail: wait)
        }
        let expires = now.addingReportingOverflow(limits.blobLifetimeMilliseconds)
        return QPQBlobInfo(size: size, received: 0, expiresAt: expires.overflow ? UInt64(Int64.max) : expires.partialValue)
    }
}
