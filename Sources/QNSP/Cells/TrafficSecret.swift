import QNSPCrypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One direction's traffic secret and what is derived from it: AEAD key, IV, and the next secret.
///
/// The secret lives in a ``SecretBytes``: the cell sealer or opener that owns it wipes it when it
/// moves to the next epoch (``wipe()``), and it is wiped when freed.
public struct TrafficSecret: Sendable, Equatable {
    public let secret: SecretBytes
    public let epoch: UInt64

    public init(secret: SecretBytes, epoch: UInt64 = 0) {
        self.secret = secret
        self.epoch = epoch
    }

    /// The AEAD key for this epoch (wipe it once a cipher holds it).
    public var key: SecretBytes {
        KeyDerivation.expandLabelSecret(secret: secret, label: "key", context: [], length: AEADAlgorithm.keySize)
    }

    /// The nonce base for this epoch.
    public var iv: [UInt8] {
        KeyDerivation.expandLabelSecret(secret: secret, label: "iv", context: [], length: AEADAlgorithm.nonceSize).copyBytes()
    }

    /// The secret after a key update: HKDF-Expand-Label(secret, "ku", "", 32).
    public var next: TrafficSecret {
        TrafficSecret(secret: KeyDerivation.expandLabelSecret(secret: secret, label: "ku", context: [], length: 32), epoch: epoch + 1)
    }

    /// Wipes the secret in place (every copy of this value shares it).
    public func wipe() { secret.wipe() }
}
