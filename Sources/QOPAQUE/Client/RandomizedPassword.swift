/// The client's randomized password (RFC 9807 §5.2.3 and §6.3.2.3): oprf_output =
/// Finalize(password, blind, evaluated_element), then Extract("", oprf_output || Stretch(oprf_output)).
enum RandomizedPassword {
    static func derive(
        password: SecretBytes,
        blind: Ristretto255Scalar,
        evaluatedElement: Ristretto255Element,
        keyStretching: KeyStretching
    ) throws(OPAQUEError) -> SecretBytes {
        let oprfOutput = try OPRF.finalize(input: password, blind: blind, evaluatedElement: evaluatedElement)
        let stretched = try keyStretching.stretch(oprfOutput)
        return SHA512KDF.extract(salt: [UInt8](), ikm: SecretBytes(concatenating: [oprfOutput, stretched]))
    }

    /// The password as a secret, checked against the OPRF's two-byte length field.
    static func checkedPassword(_ password: some Collection<UInt8>) throws(OPAQUEError) -> SecretBytes {
        let secret = SecretBytes(copying: password)
        guard secret.count <= 0xFFFF else { throw .passwordTooLong(secret.count) }
        return secret
    }
}
