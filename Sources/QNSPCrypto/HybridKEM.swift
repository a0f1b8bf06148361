import Crypto

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The hybrid KEM QNSP uses: X-Wing (ML-KEM-768 + X25519, draft-connolly-cfrg-xwing-kem).
public enum HybridKEM {
    public static let publicKeySize = 1216
    public static let encapsulationSize = 1120
    public static let sharedSecretSize = 32
    public static let seedSize = 32

    /// An X-Wing decapsulation key, kept as its 32-byte seed.
    public struct PrivateKey: @unchecked Sendable {
        let key: XWingMLKEM768X25519.PrivateKey
        public let publicKey: PublicKey

        /// Expands a 32-byte seed (deterministic: the same seed gives the same key pair).
        public init(seed: [UInt8]) throws(QNSPCryptoError) {
            guard seed.count == HybridKEM.seedSize else {
                throw .invalidKeySize(what: "X-Wing seed", expected: HybridKEM.seedSize, actual: seed.count)
            }
            do {
                key = try XWingMLKEM768X25519.PrivateKey(seedRepresentation: seed, publicKey: nil)
            } catch {
                throw .invalidKeyMaterial("X-Wing seed rejected: \(error)")
            }
            publicKey = PublicKey(key: key.publicKey)
        }

        /// Generates a fresh key from `random`.
        public static func generate(using random: SecureRandom = SecureRandom()) throws(QNSPCryptoError) -> PrivateKey {
            var seed = try random.bytes(HybridKEM.seedSize)
            defer { ConstantTime.wipe(&seed) }
            return try PrivateKey(seed: seed)
        }

        public var seed: [UInt8] { Array(key.seedRepresentation) }

        /// Recovers the shared secret from an encapsulation. X-Wing rejects implicitly:
        /// a well-formed encapsulation made for another key yields an unrelated secret.
        public func decapsulate(_ encapsulation: [UInt8]) throws(QNSPCryptoError) -> SecretBytes {
            guard encapsulation.count == HybridKEM.encapsulationSize else {
                throw .invalidKeySize(what: "X-Wing encapsulation", expected: HybridKEM.encapsulationSize, actual: encapsulation.count)
            }
            do {
                return SecretBytes(copying: try key.decapsulate(Data(encapsulation)))
            } catch {
                throw .invalidKeyMaterial("X-Wing decapsulation failed: \(error)")
            }
        }
    }

    /// An X-Wing encapsulation key (1216 bytes).
    public struct PublicKey: @unchecked Sendable, Equatable {
        let key: XWingMLKEM768X25519.PublicKey
        public let rawRepresentation: [UInt8]

        init(key: XWingMLKEM768X25519.PublicKey) {
            self.key = key
            self.rawRepresentation = Array(key.rawRepresentation)
        }

        public init(rawRepresentation: [UInt8]) throws(QNSPCryptoError) {
            guard rawRepresentation.count == HybridKEM.publicKeySize else {
                throw .invalidKeySize(what: "X-Wing public key", expected: HybridKEM.publicKeySize, actual: rawRepresentation.count)
            }
            do {
                key = try XWingMLKEM768X25519.PublicKey(rawRepresentation: rawRepresentation)
            } catch {
                throw .invalidKeyMaterial("X-Wing public key rejected: \(error)")
            }
            self.rawRepresentation = rawRepresentation
        }

        /// Encapsulates a fresh shared secret to this key.
        public func encapsulate() throws(QNSPCryptoError) -> (sharedSecret: SecretBytes, encapsulation: [UInt8]) {
            do {
                let r = try key.encapsulate()
                return (SecretBytes(copying: r.sharedSecret), Array(r.encapsulated))
            } catch {
                throw .invalidKeyMaterial("X-Wing encapsulation failed: \(error)")
            }
        }

        public static func == (a: PublicKey, b: PublicKey) -> Bool { a.rawRepresentation == b.rawRepresentation }
    }
}
