// MARK: - Sender ratchet

/// An AEAD key and nonce for one generation of a sender ratchet.
public struct KeyAndNonce: Sendable, Equatable {
    public var key: [UInt8]
    public var nonce: [UInt8]
}

/// Which of a sender's two ratchets a message uses.
public enum RatchetKind: UInt8, Sendable {
    case handshake = 0
    case application = 1
}

/// Limits on out-of-order delivery (RFC 9420 §15.3).
public struct RatchetLimits: Sendable, Equatable {
    /// How many skipped generations are kept per sender ratchet for late messages.
    public var outOfOrderWindow: Int
    /// How far ahead of the next expected generation a message may be.
    public var maximumForwardDistance: UInt32

    public init(outOfOrderWindow: Int = 256, maximumForwardDistance: UInt32 = 1000) {
        self.outOfOrderWindow = outOfOrderWindow
        self.maximumForwardDistance = maximumForwardDistance
    }
}

/// One symmetric hash ratchet: the secret for the next unused generation, plus the keys of
/// skipped generations still inside the out-of-order window.
struct SenderRatchet: Sendable, Equatable {
    var generation: UInt32
    var secret: [UInt8]
    var skipped: [UInt32: KeyAndNonce]

    init(secret: [UInt8]) {
        generation = 0
        self.secret = secret
        skipped = [:]
    }

    private static func keyAndNonce(
        _ provider: CipherSuiteProvider,
        _ secret: [UInt8],
        _ generation: UInt32
    ) -> KeyAndNonce {
        KeyAndNonce(
            key: provider.deriveTreeSecret(
                secret: secret,
                label: "key",
                generation: generation,
                length: provider.aeadKeyLength
            ),
            nonce: provider.deriveTreeSecret(
                secret: secret,
                label: "nonce",
                generation: generation,
                length: provider.aeadNonceLength
            )
        )
    }

    private static func next(_ provider: CipherSuiteProvider, _ secret: [UInt8], _ generation: UInt32) -> [UInt8] {
        provider.deriveTreeSecret(secret: secret, label: "secret", generation: generation, length: provider.hashLength)
    }

    /// The key of the next generation, for sending; advances the ratchet.
    mutating func nextForSending(_ provider: CipherSuiteProvider) throws(MLSError) -> (UInt32, KeyAndNonce) {
        guard generation < UInt32.max else {
            throw .ratchetWindow("sender ratchet exhausted")
        }
        let current = generation
        let keys = Self.keyAndNonce(provider, secret, current)
        secret = Self.next(provider, secret, current)
        generation += 1
        return (current, keys)
    }

    /// The key for a received generation; advances the ratchet and drops that key.
    mutating func consume(
        _ provider: CipherSuiteProvider,
        generation target: UInt32,
        limits: RatchetLimits
    ) throws(MLSError) -> KeyAndNonce {
        if target < generation {
            guard let keys = skipped.removeValue(forKey: target) else {
                throw .ratchetWindow("generation \(target) was already used or is outside the window")
            }
            return keys
        }
        guard target - generation <= limits.maximumForwardDistance else {
            throw .ratchetWindow("generation \(target) is more than \(limits.maximumForwardDistance) ahead")
        }
        while generation < target {
            skipped[generation] = Self.keyAndNonce(provider, secret, generation)
            secret = Self.next(provider, secret, generation)
            generation += 1
        }
        if skipped.count > limits.outOfOrderWindow {
            let excess = skipped.count - limits.outOfOrderWindow
            for old in skipped.keys.sorted().prefix(excess) {
                skipped.removeValue(forKey: old)
            }
        }
        let keys = Self.keyAndNonce(provider, secret, generation)
        guard generation < UInt32.max else {
            throw .ratchetWindow("sender ratchet exhausted")
        }
        secret = Self.next(provider, secret, generation)
        generation += 1
        return keys
    }
}

extension SenderRatchet: MLSCodable {
    func encode(to writer: inout MLSWriter) {
        writer.writeUInt32(generation)
        writer.writeOpaque(secret)
        writer.writeVector { w in
            for (g, keys) in skipped.sorted(by: { $0.key < $1.key }) {
                w.writeUInt32(g)
                w.writeOpaque(keys.key)
                w.writeOpaque(keys.nonce)
            }
        }
    }

    init(from reader: inout MLSReader) throws(MLSCodecError) {
        generation = try reader.readUInt32()
        secret = try reader.readOpaque()
        let entries = try reader.readVector { (r: inout MLSReader) throws(MLSCodecError) -> (UInt32, KeyAndNonce) in
            (try r.readUInt32(), KeyAndNonce(key: try r.readOpaque(), nonce: try r.readOpaque()))
        }
        skipped = [:]
        for (g, keys) in entries {
            skipped[g] = keys
        }
    }
}
