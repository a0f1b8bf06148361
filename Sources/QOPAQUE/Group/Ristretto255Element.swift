import CSodium

/// A ristretto255 group element that has passed validation: 32 bytes, the canonical encoding of a
/// group element, not the identity. Elements are public values; Diffie-Hellman results are not
/// elements but ``SecretBytes`` (see ``diffieHellman(_:)``).
package struct Ristretto255Element: Sendable, Equatable, Hashable {
    /// Npk = Noe = 32.
    package static let size = 32

    /// The canonical encoding.
    package let bytes: [UInt8]

    /// Decodes and validates a peer's or a record's element (RFC 9497 §2.1 DeserializeElement, plus the
    /// identity check RFC 9807 §10.6 asks for).
    package init(validating input: some Collection<UInt8>, field: OPAQUEError.Field) throws(OPAQUEError) {
        let candidate = Array(input)
        guard candidate.count == Self.size else {
            throw .invalidLength(.element, expected: Self.size, actual: candidate.count)
        }
        Sodium.ensureInitialized()
        guard candidate.withUnsafeBufferPointer({ csodium_ristretto255_is_valid_point($0.baseAddress) }) == 1 else {
            throw .invalidElement(field)
        }
        // The identity's canonical encoding is all zeros, and encodings are unique.
        guard candidate.contains(where: { $0 != 0 }) else {
            throw .identityElement(field)
        }
        bytes = candidate
    }

    /// An element libsodium produced (its outputs are canonical; callers have excluded the identity).
    private init(sodiumOutput: [UInt8]) {
        bytes = sodiumOutput
    }

    /// `scalar * G`; fails only if the scalar is zero, which ``Ristretto255Scalar`` rules out.
    package static func generatorMultiple(_ scalar: Ristretto255Scalar) throws(OPAQUEError) -> Ristretto255Element {
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: size)
        let status = scalar.withUnsafeBytes { n in
            out.withUnsafeMutableBufferPointer { q in
                csodium_scalarmult_ristretto255_base(q.baseAddress, n.baseAddress?.assumingMemoryBound(to: UInt8.self))
            }
        }
        guard status == 0 else { throw .identityElement(.element) }
        return Ristretto255Element(sodiumOutput: out)
    }

    /// The ristretto255 one-way map of 64 uniform bytes (the second half of hash_to_ristretto255).
    /// Throws ``OPAQUEError/invalidInput`` if the result is the identity.
    package static func fromUniformBytes(_ uniform: SecretBytes) throws(OPAQUEError) -> Ristretto255Element {
        precondition(uniform.count == 64, "the ristretto255 map takes 64 bytes")
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: size)
        let status = uniform.withUnsafeBytes { h in
            out.withUnsafeMutableBufferPointer { p in
                csodium_ristretto255_from_hash(p.baseAddress, h.baseAddress?.assumingMemoryBound(to: UInt8.self))
            }
        }
        guard status == 0, out.contains(where: { $0 != 0 }) else { throw .invalidInput }
        return Ristretto255Element(sodiumOutput: out)
    }

    /// `scalar * self`, as a public element (OPRF blinding, evaluation and unblinding).
    package func multiplied(by scalar: Ristretto255Scalar) throws(OPAQUEError) -> Ristretto255Element {
        Ristretto255Element(sodiumOutput: try multiply(scalar).copiedBytes())
    }

    /// `scalar * self` as a secret byte string: the Diffie-Hellman function of RFC 9807 §6.4.1.
    package func diffieHellman(_ scalar: Ristretto255Scalar) throws(OPAQUEError) -> SecretBytes {
        try multiply(scalar)
    }

    private func multiply(_ scalar: Ristretto255Scalar) throws(OPAQUEError) -> SecretBytes {
        Sodium.ensureInitialized()
        var status: Int32 = 0
        let result = SecretBytes(count: Self.size) { (q: UnsafeMutableRawBufferPointer) in
            status = scalar.withUnsafeBytes { n in
                bytes.withUnsafeBufferPointer { p in
                    csodium_scalarmult_ristretto255(
                        q.baseAddress?.assumingMemoryBound(to: UInt8.self),
                        n.baseAddress?.assumingMemoryBound(to: UInt8.self),
                        p.baseAddress
                    )
                }
            }
        }
        // Validated non-identity points in a prime-order group and non-zero scalars cannot give the
        // identity, but libsodium reports it, so it is checked anyway (RFC 9807 §10.6).
        guard status == 0 else { throw .identityElement(.element) }
        return result
    }
}
