import CSodium

/// OPAQUE's key stretching function (KSF), Stretch(msg) of RFC 9807 §2.3: Argon2id in production;
/// the identity function exists only for the specification's test vectors and is not reachable
/// outside this module and its tests.
package struct KeyStretching: Sendable, Equatable, CustomStringConvertible {
    enum Kind: Sendable, Equatable {
        case identity
        case argon2id(Argon2idParameters)
    }

    let kind: Kind

    /// Argon2id with the given costs.
    package static func argon2id(_ parameters: Argon2idParameters) -> KeyStretching {
        KeyStretching(kind: .argon2id(parameters))
    }

    /// Stretch(msg) = msg: the test vectors' KSF. Internal on purpose (tests reach it with @testable).
    static let identity = KeyStretching(kind: .identity)

    /// Stretches the 64-byte OPRF output.
    package func stretch(_ input: SecretBytes) throws(OPAQUEError) -> SecretBytes {
        switch kind {
        case .identity:
            return SecretBytes(concatenating: [input])
        case .argon2id(let parameters):
            Sodium.ensureInitialized()
            let salt = [UInt8](repeating: 0, count: Int(CSODIUM_ARGON2ID_SALTBYTES))
            var status: Int32 = 0
            let output = SecretBytes(count: SHA512KDF.outputSize) { (out: UnsafeMutableRawBufferPointer) in
                status = input.withUnsafeBytes { password in
                    salt.withUnsafeBufferPointer { s in
                        csodium_argon2id(
                            out.baseAddress?.assumingMemoryBound(to: UInt8.self),
                            out.count,
                            password.baseAddress?.assumingMemoryBound(to: UInt8.self),
                            password.count,
                            s.baseAddress,
                            UInt64(parameters.iterations),
                            Int(parameters.memoryKiB) * 1024
                        )
                    }
                }
            }
            guard status == 0 else { throw .keyStretchingFailed }
            return output
        }
    }

    package var description: String {
        switch kind {
        case .identity: return "identity (test vectors only)"
        case .argon2id(let parameters): return parameters.description
        }
    }
}
