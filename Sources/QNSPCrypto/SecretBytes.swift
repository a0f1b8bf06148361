import Crypto

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Secret key material in memory this object owns, wiped in place by `wipe()` and on deinit.
///
/// Arrays cannot be wiped reliably: copy-on-write makes `var copy = secret; wipe(&copy)` clear a
/// fresh copy and leave the original to be freed unwiped. A `SecretBytes` is a reference, so
/// every holder sees the same bytes and a wipe reaches all of them. Create it from the place the
/// secret is computed (``KeyDerivation``'s `…Secret` functions, ``HybridKEM``) rather than from
/// an array, so that no unwiped copy exists; `init(wiping:)` copies and then wipes the array it
/// was given.
///
/// Not synchronized: one owner (a connection, a key schedule) uses and wipes it.
public final class SecretBytes: ContiguousBytes, Equatable, @unchecked Sendable {
    private let storage: UnsafeMutableRawBufferPointer
    public let count: Int

    /// Allocates `count` bytes and lets `fill` write them.
    public init(count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        self.count = count
        storage = .allocate(byteCount: max(count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        do {
            try fill(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
        } catch {
            Self.zero(storage)
            storage.deallocate()
            throw error
        }
    }

    /// Copies `bytes` and wipes the array in place (it must not be shared).
    public convenience init(wiping bytes: inout [UInt8]) {
        let source = bytes
        self.init(count: source.count) { $0.copyBytes(from: source) }
        ConstantTime.wipe(&bytes)
    }

    /// Copies from any contiguous bytes (a `SymmetricKey`, a buffer); the source keeps its own copy.
    public convenience init(copying bytes: some ContiguousBytes) {
        let n = bytes.withUnsafeBytes { $0.count }
        self.init(count: n) { out in bytes.withUnsafeBytes { out.copyMemory(from: $0) } }
    }

    deinit {
        Self.zero(storage)
        storage.deallocate()
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// Overwrites the bytes with zeros, in place; every holder sees zeros afterwards.
    public func wipe() { Self.zero(storage) }

    /// Whether every byte is zero (after `wipe()`, or a secret of zeros).
    public var isZero: Bool { withUnsafeBytes { raw in raw.reduce(0) { $0 | $1 } == 0 } }

    /// A copy as an array, for known-answer tests and wire encodings that need one; the caller
    /// owns (and should wipe) it.
    public func copyBytes() -> [UInt8] { withUnsafeBytes { Array($0) } }

    /// Constant-time comparison of contents.
    public static func == (a: SecretBytes, b: SecretBytes) -> Bool {
        a.withUnsafeBytes { x in b.withUnsafeBytes { y in ConstantTime.equals(x, y) } }
    }

    private static func zero(_ buffer: UnsafeMutableRawBufferPointer) { ConstantTime.wipe(buffer) }
}
