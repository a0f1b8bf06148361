/// The fractional hexadecimal digits of π as 32-bit words (0x243F6A88, 0x85A308D3, ...), which
/// Blowfish uses as its initial P-array (18 words) and S-boxes (4 × 256 words). Computed once
/// with Machin's formula in fixed point rather than carried as a 4 KiB table; the first and last
/// words are checked against the published Blowfish constants by the tests.
enum PiHexWords {
    /// The first 1,042 words of π's fraction.
    static let blowfish: [UInt32] = compute(words: 18 + 4 * 256)

    /// π's fraction to `words` 32-bit words (plus guard words), by π = 16·atan(1/5) − 4·atan(1/239).
    static func compute(words: Int) -> [UInt32] {
        let limbs = words + 4  // guard words absorb the truncation error of the series
        var a = atan(inverse: 5, limbs: limbs)
        multiply(&a, by: 16)
        var b = atan(inverse: 239, limbs: limbs)
        multiply(&b, by: 4)
        subtract(&a, b)
        // a[0] is the integer part (3); the fraction follows.
        return Array(a[1...words])
    }

    /// atan(1/x) in fixed point: limbs[0] integer part, then base-2^32 fraction, most significant first.
    static func atan(inverse x: UInt32, limbs: Int) -> [UInt32] {
        var sum = [UInt32](repeating: 0, count: limbs)
        var power = [UInt32](repeating: 0, count: limbs)
        power[0] = 1
        divide(&power, by: x)              // 1/x
        var term = power
        var k: UInt32 = 1
        var positive = true
        while !term.allSatisfy({ $0 == 0 }) {
            if positive { add(&sum, term) } else { subtract(&sum, term) }
            divide(&power, by: x)
            divide(&power, by: x)          // 1/x^(2k+1)
            k += 2
            term = power
            divide(&term, by: k)
            positive.toggle()
        }
        return sum
    }

    static func divide(_ n: inout [UInt32], by d: UInt32) {
        var remainder: UInt64 = 0
        for i in n.indices {
            let value = remainder << 32 | UInt64(n[i])
            n[i] = UInt32(value / UInt64(d))
            remainder = value % UInt64(d)
        }
    }

    static func multiply(_ n: inout [UInt32], by m: UInt32) {
        var carry: UInt64 = 0
        for i in n.indices.reversed() {
            let value = UInt64(n[i]) * UInt64(m) + carry
            n[i] = UInt32(truncatingIfNeeded: value)
            carry = value >> 32
        }
    }

    static func add(_ a: inout [UInt32], _ b: [UInt32]) {
        var carry: UInt64 = 0
        for i in a.indices.reversed() {
            let value = UInt64(a[i]) + UInt64(b[i]) + carry
            a[i] = UInt32(truncatingIfNeeded: value)
            carry = value >> 32
        }
    }

    static func subtract(_ a: inout [UInt32], _ b: [UInt32]) {
        var borrow: Int64 = 0
        for i in a.indices.reversed() {
            var value = Int64(a[i]) - Int64(b[i]) - borrow
            borrow = value < 0 ? 1 : 0
            if value < 0 { value += 1 << 32 }
            a[i] = UInt32(value)
        }
    }
}
