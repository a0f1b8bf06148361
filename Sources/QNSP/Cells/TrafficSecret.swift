import QNSPCrypto

/// One direction's traffic secret and what is derived from it: AEAD key, IV, and the next secret.
public struct TrafficSecret: Sendable, Equatable {
    public let secret: [UInt8]
    public let epoch: UInt64

    public init(secret: [UInt8], epoch: UInt64 = 0) {
        self.secret = secret
        self.epoch = epoch
    }

    public var key: [UInt8] { KeyDerivation.expandLabel(secret: secret, label: "key", context: [], length: AEADAlgorithm.keySize) }
    public var iv: [UInt8] { KeyDerivation.expandLabel(secret: secret, label: "iv", context: [], length: AEADAlgorithm.nonceSize) }
    /// The secret after a key update: HKDF-Expand-Label(secret, "ku", "", 32).
    public var next: TrafficSecret {
        TrafficSecret(secret: KeyDerivation.expandLabel(secret: secret, label: "ku", context: [], length: 32), epoch: epoch + 1)
    }
}
