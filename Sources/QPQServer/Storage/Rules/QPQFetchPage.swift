import QPQProtocol

/// One page of a device's queue (`Fetch`, push): the oldest envelopes after a cursor, at most
/// `limit` of them and about `maxBytes` (at least one envelope however large), and whether more
/// are queued. A store reads ``rowLimit`` rows in message id order and ``add(_:)``s them until it
/// returns false.
package struct QPQFetchPage: Sendable {
    package let limit: Int
    package let maxBytes: Int
    package private(set) var envelopes: [QPQEnvelope] = []
    /// Something more is queued than the page holds.
    package private(set) var more = false
    private var bytes = 0

    package init(limit: Int, maxBytes: Int) {
        self.limit = max(0, limit)
        self.maxBytes = maxBytes
    }

    /// The rows to read: one more than `limit`, so that ``more`` is known.
    package var rowLimit: Int { limit == Int.max ? limit : limit + 1 }

    /// The cursor `message_id > after` as the databases' signed 64-bit ids.
    package static func cursor(after: UInt64) -> Int64 { Int64(min(after, UInt64(Int64.max))) }

    /// Adds the next envelope in id order if the page has room; false (and ``more`` set) if not,
    /// and the store stops reading.
    package mutating func add(_ envelope: QPQEnvelope) -> Bool {
        let size = envelope.encodedSize
        if envelopes.count == limit || (!envelopes.isEmpty && size > maxBytes - bytes) {
            more = true
            return false
        }
        bytes += size
        envelopes.append(envelope)
        return true
    }

    package var result: (envelopes: [QPQEnvelope], more: Bool) { (envelopes, more) }
}
