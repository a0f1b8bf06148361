import CSodium
import Foundation

/// An owned, fixed-size buffer for secret bytes (keys, seeds, passwords) that is wiped with
/// `sodium_memzero` when the last reference goes away.
///
/// The contents are written only while the buffer is being built (`init(count:fill:)`); afterwards it
/// is read-only, which is what makes sharing one between copies of a state-machine struct safe
/// (hence `@unchecked Sendable`). Copying the bytes out with ``copiedBytes()`` hands the caller a
/// plain array that is no longer wiped for them.
package final class SecretBytes: @unchecked Sendable, ContiguousBytes, CustomStringConvertible {
    private let storage: UnsafeMutableRawBufferPointer

    /// The number of bytes held.
    package let count: Int

    /// A buffer of `count` bytes that `fill` writes once, before anyone else can see it.
    package init<E: Error>(count: Int, fill: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        precondition(count >= 0, "SecretBytes: negative size")
        self.count = count
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        do {
            try fill(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
        } catch {
            csodium_memzero(storage.baseAddress, storage.count)
            storage.deallocate()
            throw error
        }
    }

    /// A copy of `bytes`.
    package convenience init(copying bytes: some Collection<UInt8>) {
        let array = Array(bytes)
        self.init(count: array.count) { (buffer: UnsafeMutableRawBufferPointer) in
            buffer.copyBytes(from: array)
        }
    }

    /// A copy of an unsafe buffer (no intermediate array).
    package convenience init(copying buffer: UnsafeRawBufferPointer) {
        self.init(count: buffer.count) { (out: UnsafeMutableRawBufferPointer) in
            out.copyMemory(from: buffer)
        }
    }

    /// The concatenation of several secrets and public byte strings, built in place.
    package convenience init(concatenating parts: [any ContiguousBytes]) {
        var total = 0
        for part in parts {
            total += part.withUnsafeBytes { $0.count }
        }
        self.init(count: total) { (out: UnsafeMutableRawBufferPointer) in
            var offset = 0
            for part in parts {
                part.withUnsafeBytes { raw in
                    UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + raw.count)]).copyMemory(from: raw)
                    offset += raw.count
                }
            }
        }
    }

    /// `count` bytes from the operating system's CSPRNG.
    package static func random(count: Int) -> SecretBytes {
        Sodium.ensureInitialized()
        return SecretBytes(count: count) { (buffer: UnsafeMutableRawBufferPointer) in
            csodium_randombytes(buffer.baseAddress, buffer.count)
        }
    }

    deinit {
        csodium_memzero(storage.baseAddress, storage.count)
        storage.deallocate()
    }

    package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// The same bytes as a plain array (which the caller must wipe if it matters).
    package func copiedBytes() -> [UInt8] {
        withUnsafeBytes { Array($0) }
    }

    /// Constant-time equality with another byte string of any length (lengths are not secret).
    package func constantTimeEquals(_ other: some ContiguousBytes) -> Bool {
        withUnsafeBytes { mine in
            other.withUnsafeBytes { theirs in
                guard mine.count == theirs.count else { return false }
                guard mine.count > 0 else { return true }
                return csodium_memcmp(mine.baseAddress, theirs.baseAddress, mine.count) == 0
            }
        }
    }

    package var description: String { "SecretBytes(\(count) bytes)" }
}
