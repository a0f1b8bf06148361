/// Everything QOPAQUE reports about peer input, credentials and parameters. Our own misuse (finishing
/// a state machine twice, say) is a precondition instead.
///
/// A wrong password and an unknown user end in the same case on each side on purpose:
/// ``envelopeRecoveryFailed`` on the client, ``clientAuthenticationFailed`` on the server.
package enum OPAQUEError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A message of the wrong size (every OPAQUE message here has one exact size).
    case invalidLength(Message, expected: Int, actual: Int)
    /// Bytes that are not the canonical encoding of a ristretto255 element.
    case invalidElement(Field)
    /// The identity element where a public key, key share or OPRF element is expected.
    case identityElement(Field)
    /// A scalar that is zero or not reduced modulo the group order (key material we are given).
    case invalidScalar(String)
    /// The password hashed to the identity element (probability about 2^-252).
    case invalidInput
    /// A password longer than 65535 bytes (the OPRF encodes its length in two bytes).
    case passwordTooLong(Int)
    /// DeriveKeyPair found no non-zero scalar in 256 tries (probability about 2^-64000).
    case deriveKeyPairFailed
    /// An identity or context string outside 1...65535 bytes (0...65535 for the context).
    case invalidIdentity(String)
    /// Argon2id parameters out of libsodium's range.
    case invalidParameters(String)
    /// Argon2id could not run (typically: its memory could not be allocated).
    case keyStretchingFailed
    /// Client: the envelope's tag did not verify. A wrong password, an unknown user (fake record)
    /// and a tampered credential response all end here.
    case envelopeRecoveryFailed
    /// Client: the server's MAC in KE2 did not verify.
    case serverAuthenticationFailed
    /// Server: the client's MAC in KE3 did not verify (wrong password, unknown user, tampering).
    case clientAuthenticationFailed
    /// A serialized server setup that is malformed.
    case invalidServerSetup(String)

    /// The OPAQUE messages and stored structures, for error reports.
    package enum Message: String, Sendable {
        case registrationRequest = "RegistrationRequest"
        case registrationResponse = "RegistrationResponse"
        case registrationRecord = "RegistrationRecord"
        case credentialRequest = "CredentialRequest"
        case credentialResponse = "CredentialResponse"
        case ke1 = "KE1"
        case ke2 = "KE2"
        case ke3 = "KE3"
        case envelope = "Envelope"
        case element = "ristretto255 element"
    }

    /// The group-element fields a peer sends or a record holds.
    package enum Field: String, Sendable {
        case blindedMessage = "blinded_message"
        case evaluatedMessage = "evaluated_message"
        case serverPublicKey = "server_public_key"
        case clientPublicKey = "client_public_key"
        case clientPublicKeyshare = "client_public_keyshare"
        case serverPublicKeyshare = "server_public_keyshare"
        case element = "element"
    }

    package var description: String {
        switch self {
        case .invalidLength(let message, let expected, let actual):
            return "\(message.rawValue): expected \(expected) bytes, got \(actual)"
        case .invalidElement(let field):
            return "\(field.rawValue): not a canonical ristretto255 element"
        case .identityElement(let field):
            return "\(field.rawValue): the identity element is not allowed"
        case .invalidScalar(let why):
            return "invalid scalar: \(why)"
        case .invalidInput:
            return "the password maps to the identity element"
        case .passwordTooLong(let count):
            return "password of \(count) bytes: at most 65535 are allowed"
        case .deriveKeyPairFailed:
            return "DeriveKeyPair found no valid scalar"
        case .invalidIdentity(let why):
            return "invalid identity: \(why)"
        case .invalidParameters(let why):
            return "invalid Argon2id parameters: \(why)"
        case .keyStretchingFailed:
            return "Argon2id failed (not enough memory?)"
        case .envelopeRecoveryFailed:
            return "login failed: wrong password or unknown user"
        case .serverAuthenticationFailed:
            return "the server's key-exchange MAC did not verify"
        case .clientAuthenticationFailed:
            return "login failed: wrong password or unknown user"
        case .invalidServerSetup(let why):
            return "invalid OPAQUE server setup: \(why)"
        }
    }
}
