import Foundation

/// The OPRF of RFC 9497 in mode 0x00 (OPRF) with the ristretto255-SHA512 suite, the functions
/// RFC 9807 §2.1 uses: HashToGroup, HashToScalar, DeriveKeyPair, Blind, BlindEvaluate, Finalize.
package enum OPRF {
    /// contextString = "OPRFV1-" || I2OSP(0x00, 1) || "-" || "ristretto255-SHA512".
    package static let contextString: [UInt8] = Bytes.ascii("OPRFV1-") + [0x00] + Bytes.ascii("-ristretto255-SHA512")

    /// hash_to_ristretto255(input) with DST "HashToGroup-" || contextString (RFC 9497 §4.1).
    package static func hashToGroup(_ input: some ContiguousBytes) throws(OPAQUEError) -> Ristretto255Element {
        let dst = Bytes.ascii("HashToGroup-") + contextString
        let uniform = ExpandMessageXMD.sha512(message: input, dst: dst, length: 64)
        return try Ristretto255Element.fromUniformBytes(uniform)
    }

    /// HashToScalar with an explicit DST: 64 bytes of expand_message_xmd reduced modulo L;
    /// `nil` for the zero scalar.
    package static func hashToScalar(_ input: some ContiguousBytes, dst: [UInt8]) -> Ristretto255Scalar? {
        Ristretto255Scalar.reducing(wide: ExpandMessageXMD.sha512(message: input, dst: dst, length: 64))
    }

    /// DeriveKeyPair(seed, info) (RFC 9497 §3.2.1).
    package static func deriveKeyPair(
        seed: some ContiguousBytes,
        info: [UInt8]
    ) throws(OPAQUEError) -> (privateKey: Ristretto255Scalar, publicKey: Ristretto255Element) {
        precondition(info.count <= 0xFFFF, "DeriveKeyPair info too long")
        let dst = Bytes.ascii("DeriveKeyPair") + contextString
        for counter in 0...255 {
            let deriveInput = SecretBytes(concatenating: [seed, Bytes.i2osp2(info.count), info, [UInt8(counter)]])
            if let privateKey = hashToScalar(deriveInput, dst: dst) {
                return (privateKey, try Ristretto255Element.generatorMultiple(privateKey))
            }
        }
        throw .deriveKeyPairFailed
    }

    /// Blind(input) with the given blind (RFC 9497 §3.3.1): blind * HashToGroup(input).
    package static func blind(
        _ input: some ContiguousBytes,
        blind: Ristretto255Scalar
    ) throws(OPAQUEError) -> Ristretto255Element {
        try hashToGroup(input).multiplied(by: blind)
    }

    /// BlindEvaluate(skS, blindedElement) = skS * blindedElement.
    package static func blindEvaluate(
        key: Ristretto255Scalar,
        blindedElement: Ristretto255Element
    ) throws(OPAQUEError) -> Ristretto255Element {
        try blindedElement.multiplied(by: key)
    }

    /// Finalize(input, blind, evaluatedElement): Hash(I2OSP(len(input), 2) || input ||
    /// I2OSP(32, 2) || (blind^-1 * evaluatedElement) || "Finalize").
    package static func finalize(
        input: SecretBytes,
        blind: Ristretto255Scalar,
        evaluatedElement: Ristretto255Element
    ) throws(OPAQUEError) -> SecretBytes {
        precondition(input.count <= 0xFFFF, "OPRF input too long")
        let unblinded = try evaluatedElement.diffieHellman(blind.inverted())
        return SHA512KDF.secretHash([
            Bytes.i2osp2(input.count), input, Bytes.i2osp2(unblinded.count), unblinded, Bytes.ascii("Finalize"),
        ])
    }
}
