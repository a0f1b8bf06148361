import Crypto

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// ML-DSA-65 (FIPS 204) signing and verification keys, kept as 32-byte seeds.
public enum SignatureScheme {
    public static let publicKeySize = 1952
    public static let signatureSize = 3309
    public static let seedSize = 32

    /// An ML-DSA-65 signing key.
    public struct PrivateKey: @unchecked Sendable {
        let key: MLDSA65.PrivateKey
        public let publicKey: PublicKey

        public init(seed: [UInt8]) throws(QNSPCryptoError) {
            guard seed.count == SignatureScheme.seedSize else {
                throw .invalidKeySize(what: "ML-DSA-65 seed", expected: SignatureScheme.seedSize, actual: seed.count)
            }
            do {
                key = try MLDSA65.PrivateKey(seedRepresentation: seed, publicKey: nil)
            } catch {
                throw .invalidKeyMaterial("ML-DSA-65 seed rejected: \(error)")
            }
            publicKey = PublicKey(key: key.publicKey)
        }

        public static func generate(using random: SecureRandom = SecureRandom()) throws(QNSPCryptoError) -> PrivateKey {
            var seed = try random.bytes(SignatureScheme.seedSize)
            defer { ConstantTime.wipe(&seed) }
            return try PrivateKey(seed: seed)
        }

        public var seed: [UInt8] { Array(key.seedRepresentation) }

        /// Signs `message` under the ML-DSA context string `context` (randomized signing).
        public func sign(_ message: [UInt8], context: [UInt8]) throws(QNSPCryptoError) -> [UInt8] {
            do {
                return Array(try key.signature(for: message, context: context))
            } catch {
                throw .invalidKeyMaterial("ML-DSA-65 signing failed: \(error)")
            }
        }
    }

    /// An ML-DSA-65 verification key (1952 bytes).
    public struct PublicKey: @unchecked Sendable, Equatable, Hashable {
        let key: MLDSA65.PublicKey
        public let rawRepresentation: [UInt8]

        init(key: MLDSA65.PublicKey) {
            self.key = key
            self.rawRepresentation = Array(key.rawRepresentation)
        }

        public init(rawRepresentation: [UInt8]) throws(QNSPCryptoError) {
            guard rawRepresentation.count == SignatureScheme.publicKeySize else {
                throw .invalidKeySize(what: "ML-DSA-65 public key", expected: SignatureScheme.publicKeySize, actual: rawRepresentation.count)
            }
            do {
                key = try MLDSA65.PublicKey(rawRepresentation: rawRepresentation)
            } catch {
                throw .invalidKeyMaterial("ML-DSA-65 public key rejected: \(error)")
            }
            self.rawRepresentation = rawRepresentation
        }

        public func isValidSignature(_ signature: [UInt8], for message: [UInt8], context: [UInt8]) -> Bool {
            guard signature.count == SignatureScheme.signatureSize else { return false }
            return key.isValidSignature(signature, for: message, context: context)
        }

        public static func == (a: PublicKey, b: PublicKey) -> Bool { a.rawRepresentation == b.rawRepresentation }
        public func hash(into h: inout Hasher) { h.combine(rawRepresentation) }
    }
}
