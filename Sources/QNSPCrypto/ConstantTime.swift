#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Helpers for handling secrets: constant-time comparison and zeroization.
public enum ConstantTime {
    /// Compares two byte sequences in time that depends only on their lengths.
    public static func equals<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for (x, y) in zip(a, b) { diff |= x ^ y }
        return diff == 0
    }

    /// Overwrites a buffer with zeros in a way the optimizer keeps.
    public static func wipe(_ bytes: inout [UInt8]) {
        wipe(bytesOf: &bytes)
        bytes.removeAll(keepingCapacity: false)
    }

    /// Overwrites the contents of a buffer with zeros, keeping its length.
    public static func wipe(bytesOf bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { wipe($0) }
    }

    /// Overwrites memory with zeros in a way the optimizer keeps.
    public static func wipe(_ raw: UnsafeMutableRawBufferPointer) {
        guard let base = raw.baseAddress, raw.count > 0 else { return }
        #if canImport(Darwin)
        _ = memset_s(base, raw.count, 0, raw.count)
        #else
        explicit_bzero(base, raw.count)
        #endif
    }
}
