import CSodium

/// Argon2id (RFC 9106, version 0x13) cost parameters for OPAQUE's key stretching. Parallelism is 1
/// (libsodium's only lane count); the salt is 16 zero bytes and the output Nh = 64 bytes, as in
/// RFC 9807 §7 and opaque-ke's `Ksf for argon2::Argon2`.
package struct Argon2idParameters: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Memory in KiB (m).
    package let memoryKiB: UInt32
    /// Passes over the memory (t).
    package let iterations: UInt32
    /// Lanes (p): always 1.
    package var parallelism: UInt32 { 1 }

    /// Checks the values against libsodium's limits (m >= 8 KiB, t >= 1, m within the platform maximum).
    package init(memoryKiB: UInt32, iterations: UInt32) throws(OPAQUEError) {
        guard iterations >= UInt32(csodium_argon2id_iterations_min()) else {
            throw .invalidParameters("t must be at least \(csodium_argon2id_iterations_min()), got \(iterations)")
        }
        let bytes = UInt64(memoryKiB) * 1024
        let minimum = UInt64(csodium_argon2id_memory_min())
        let maximum = UInt64(csodium_argon2id_memory_max())
        guard bytes >= minimum, bytes <= maximum else {
            throw .invalidParameters("m must be \(minimum / 1024)...\(maximum / 1024) KiB, got \(memoryKiB)")
        }
        self.memoryKiB = memoryKiB
        self.iterations = iterations
    }

    private init(constant memoryKiB: UInt32, _ iterations: UInt32) {
        self.memoryKiB = memoryKiB
        self.iterations = iterations
    }

    /// qpq's choice: m = 64 MiB, t = 3, p = 1 — RFC 9106's second recommended option (m = 64 MiB, t = 3)
    /// with one lane, the same memory-time cost for an attacker. See docs/opaque.md for the measurements.
    package static let qpqDefault = Argon2idParameters(constant: 64 * 1024, 3)

    /// `argon2::Argon2::default()` of the argon2 crate 0.5 that opaque-ke uses: m = 19 MiB, t = 2, p = 1.
    /// Used for interoperability with opaque-ke's default configuration.
    package static let opaqueKeDefault = Argon2idParameters(constant: 19 * 1024, 2)

    package var description: String { "Argon2id(m=\(memoryKiB) KiB, t=\(iterations), p=1)" }
}
