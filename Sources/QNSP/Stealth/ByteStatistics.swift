/// Tests of captured bytes against uniform randomness, and the first-packet rules of
/// Wu et al. (USENIX Security 2023), for the stealth tests and `qnsp-bench --stealth`.
package enum ByteStatistics {
    /// Chi-square critical value for 255 degrees of freedom at p = 0.001.
    package static let chiSquareCritical255 = 330.52

    /// Pearson's chi-square of the byte-value histogram against uniform (255 degrees of freedom).
    package static func chiSquare(_ bytes: some Collection<UInt8>) -> Double {
        var counts = [Int](repeating: 0, count: 256)
        for b in bytes { counts[Int(b)] += 1 }
        let expected = Double(bytes.count) / 256
        guard expected > 0 else { return 0 }
        return counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
    }

    /// Shannon entropy of the byte values, bits per byte.
    package static func entropy(_ bytes: some Collection<UInt8>) -> Double {
        var counts = [Int](repeating: 0, count: 256)
        for b in bytes { counts[Int(b)] += 1 }
        let n = Double(bytes.count)
        guard n > 0 else { return 0 }
        return counts.reduce(0.0) { acc, c in c == 0 ? acc : acc - Double(c) / n * log2(Double(c) / n) }
    }

    /// For each bit position 0…7 of a byte, the z-score of the count of ones against Binomial(n, 1/2).
    package static func bitFrequencyZ(_ bytes: some Collection<UInt8>) -> [Double] {
        var ones = [Int](repeating: 0, count: 8)
        for b in bytes { for i in 0..<8 where b >> i & 1 == 1 { ones[i] += 1 } }
        let n = Double(bytes.count)
        return ones.map { (Double($0) - n / 2) / (n / 4).squareRoot() }
    }

    /// For each bit position of the first `prefix` bytes across `samples` (each at least that
    /// long), the z-score of the count of ones; returns the largest |z|.
    package static func positionalBitMaxZ(_ samples: [[UInt8]], prefix: Int) -> Double {
        var ones = [Int](repeating: 0, count: prefix * 8)
        for s in samples {
            for i in 0..<min(prefix, s.count) {
                let b = s[i]
                for j in 0..<8 where b >> j & 1 == 1 { ones[i * 8 + j] += 1 }
            }
        }
        let n = Double(samples.count)
        return ones.map { abs((Double($0) - n / 2) / (n / 4).squareRoot()) }.max() ?? 0
    }

    /// Two-sided normal critical value for p = 0.001 split over `tests` tests (Bonferroni).
    package static func zCritical(tests: Int) -> Double {
        // Inverse of the normal tail by bisection on erfc.
        let target = 0.001 / Double(max(1, tests))
        var lo = 0.0, hi = 10.0
        for _ in 0..<100 {
            let mid = (lo + hi) / 2
            if erfc(mid / 2.0.squareRoot()) > target { lo = mid } else { hi = mid }
        }
        return hi
    }

    /// The verdict of the first-packet exemption rules of Wu et al. on one first payload.
    package struct FirstPacketVerdict: Sendable, Equatable, CustomStringConvertible {
        /// Average set bits per byte.
        package var popcountPerByte: Double
        /// Ex1: popcount per byte ≤ 3.4 or ≥ 4.6.
        package var exemptByPopcount: Bool
        /// Ex2: the first six bytes are printable ASCII.
        package var exemptByPrintablePrefix: Bool
        /// Ex3: more than half of the bytes are printable.
        package var exemptByPrintableShare: Bool
        /// Ex4: more than 20 contiguous printable bytes.
        package var exemptByPrintableRun: Bool
        /// Blocked by the heuristic: no exemption applies.
        package var flagged: Bool { !(exemptByPopcount || exemptByPrintablePrefix || exemptByPrintableShare || exemptByPrintableRun) }
        package var description: String {
            let p = (popcountPerByte * 100).rounded() / 100
            return flagged ? "flagged (popcount \(p)/byte, no exemption)" : "exempt (popcount \(p)/byte)"
        }
    }

    package static func firstPacketVerdict(_ payload: [UInt8]) -> FirstPacketVerdict {
        let printable: (UInt8) -> Bool = { $0 >= 0x20 && $0 <= 0x7e }
        let bits = payload.reduce(0) { $0 + $1.nonzeroBitCount }
        let popcount = payload.isEmpty ? 0 : Double(bits) / Double(payload.count)
        var run = 0, longest = 0
        for b in payload {
            run = printable(b) ? run + 1 : 0
            longest = max(longest, run)
        }
        let share = payload.isEmpty ? 0 : Double(payload.filter(printable).count) / Double(payload.count)
        return FirstPacketVerdict(
            popcountPerByte: popcount,
            exemptByPopcount: popcount <= 3.4 || popcount >= 4.6,
            exemptByPrintablePrefix: payload.count >= 6 && payload.prefix(6).allSatisfy(printable),
            exemptByPrintableShare: share > 0.5,
            exemptByPrintableRun: longest > 20)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
