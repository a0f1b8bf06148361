/// Builds one frame body; length-prefixed fields check their limit first.
struct QPQWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    mutating func u16(_ v: UInt16) { uint(UInt64(v), 2) }
    mutating func u32(_ v: UInt32) { uint(UInt64(v), 4) }
    mutating func u64(_ v: UInt64) { uint(v, 8) }

    private mutating func uint(_ v: UInt64, _ n: Int) {
        for i in stride(from: n - 1, through: 0, by: -1) { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }

    mutating func fixed(_ v: [UInt8], _ n: Int, _ field: String) throws(QPQEncodeError) {
        guard v.count == n else { throw .invalidField(field: field, reason: "must be \(n) bytes, not \(v.count)") }
        bytes += v
    }

    mutating func bytes(_ v: [UInt8], prefix: Int, max: Int, min: Int = 0, _ field: String) throws(QPQEncodeError) {
        guard v.count <= max else { throw .fieldTooLong(field: field, limit: max, actual: v.count) }
        guard v.count >= min else { throw .invalidField(field: field, reason: "must be at least \(min) bytes") }
        uint(UInt64(v.count), prefix)
        bytes += v
    }

    mutating func string8(_ s: String, max: Int, _ field: String) throws(QPQEncodeError) {
        try bytes(Array(s.utf8), prefix: 1, max: max, field)
    }

    mutating func userName(_ s: String, _ field: String = "user") throws(QPQEncodeError) {
        guard QPQLimits.isValidUserName(s) else {
            throw .invalidField(field: field, reason: "not a user name (1-32 of a-z 0-9 . _ -, starting with a letter or digit)")
        }
        try string8(s, max: QPQLimits.maxUserName, field)
    }

    mutating func groupId(_ v: [UInt8]) throws(QPQEncodeError) {
        try bytes(v, prefix: 1, max: QPQLimits.maxGroupId, min: 1, "groupId")
    }

    mutating func count16(_ n: Int, max: Int, _ field: String) throws(QPQEncodeError) {
        guard n <= max else { throw .fieldTooLong(field: "\(field) count", limit: max, actual: n) }
        u16(UInt16(n))
    }
}
