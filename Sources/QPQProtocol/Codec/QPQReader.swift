/// Reads the fields of one frame body; every read checks the bytes left and the field's limit.
struct QPQReader {
    private let bytes: [UInt8]
    private var index: Int

    init(_ bytes: [UInt8], start: Int = 0) {
        self.bytes = bytes
        self.index = start
    }

    var remaining: Int { bytes.count - index }

    private mutating func take(_ n: Int, _ field: String) throws(QPQDecodeError) -> ArraySlice<UInt8> {
        guard n >= 0, remaining >= n else {
            throw .malformed("\(field): needs \(n) bytes, \(remaining) left")
        }
        defer { index += n }
        return bytes[index..<(index + n)]
    }

    mutating func u8(_ field: String) throws(QPQDecodeError) -> UInt8 { try take(1, field).first ?? 0 }

    mutating func u16(_ field: String) throws(QPQDecodeError) -> UInt16 {
        UInt16(truncatingIfNeeded: try uint(2, field))
    }

    mutating func u32(_ field: String) throws(QPQDecodeError) -> UInt32 {
        UInt32(truncatingIfNeeded: try uint(4, field))
    }

    mutating func u64(_ field: String) throws(QPQDecodeError) -> UInt64 { try uint(8, field) }

    private mutating func uint(_ n: Int, _ field: String) throws(QPQDecodeError) -> UInt64 {
        var value: UInt64 = 0
        for b in try take(n, field) { value = value << 8 | UInt64(b) }
        return value
    }

    mutating func bool(_ field: String) throws(QPQDecodeError) -> Bool {
        switch try u8(field) {
        case 0: return false
        case 1: return true
        case let v: throw .malformed("\(field): \(v) is not 0 or 1")
        }
    }

    mutating func fixed(_ n: Int, _ field: String) throws(QPQDecodeError) -> [UInt8] { Array(try take(n, field)) }

    /// A byte string with a 1-, 2- or 4-byte length prefix, at most `max` bytes (and at least `min`).
    mutating func bytes(prefix: Int, max: Int, min: Int = 0, _ field: String) throws(QPQDecodeError) -> [UInt8] {
        let n = Int(try uint(prefix, "\(field) length"))
        guard n <= max else { throw .malformed("\(field): \(n) bytes is over the limit of \(max)") }
        guard n >= min else { throw .malformed("\(field): \(n) bytes is under the minimum of \(min)") }
        return Array(try take(n, field))
    }

    mutating func string8(max: Int, _ field: String) throws(QPQDecodeError) -> String {
        let raw = try bytes(prefix: 1, max: max, field)
        guard let s = String(validating: raw, as: UTF8.self) else { throw .malformed("\(field): not UTF-8") }
        return s
    }

    mutating func userName(_ field: String = "user") throws(QPQDecodeError) -> String {
        let s = try string8(max: QPQLimits.maxUserName, field)
        guard QPQLimits.isValidUserName(s) else {
            throw .malformed("\(field): not a user name (1-32 of a-z 0-9 . _ -, starting with a letter or digit)")
        }
        return s
    }

    mutating func groupId() throws(QPQDecodeError) -> [UInt8] {
        try bytes(prefix: 1, max: QPQLimits.maxGroupId, min: 1, "groupId")
    }

    /// A `u16` element count, at most `max`.
    mutating func count16(max: Int, _ field: String) throws(QPQDecodeError) -> Int {
        let n = Int(try u16("\(field) count"))
        guard n <= max else { throw .malformed("\(field): \(n) entries is over the limit of \(max)") }
        return n
    }

    func finish(_ what: String) throws(QPQDecodeError) {
        guard remaining == 0 else { throw .malformed("\(what): \(remaining) trailing bytes") }
    }
}
