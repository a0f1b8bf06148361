import CQNSPBoringAEAD
import Crypto

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One AEAD key, ready to seal and open many messages without per-call setup.
///
/// On Linux the key schedule is computed once in a BoringSSL context (see the
/// `CQNSPBoringAEAD` shim); elsewhere it falls back to swift-crypto's API.
/// Not thread-safe: one cipher belongs to one direction of one connection.
public final class AEADCipher {
    public let algorithm: AEADAlgorithm
    private var context: UnsafeMutableRawPointer?
    private var portableKey: SymmetricKey
    private let forcePortable: Bool

    /// Whether the fast BoringSSL context path is linked into this binary.
    public static var usesFastPath: Bool { qnsp_aead_available() == 1 }

    /// Creates a cipher; `forcePortable` selects the swift-crypto path (used by tests to cross-check).
    /// The key may be a ``SecretBytes`` (no copy is kept outside the cipher's own state, which
    /// BoringSSL wipes when the context is freed, and swift-crypto's `SymmetricKey`, which wipes
    /// itself) or an array.
    public init(algorithm: AEADAlgorithm, key: some ContiguousBytes, forcePortable: Bool = false) throws(QNSPCryptoError) {
        let keyCount = key.withUnsafeBytes { $0.count }
        guard keyCount == AEADAlgorithm.keySize else {
            throw .invalidKeySize(what: "AEAD key", expected: AEADAlgorithm.keySize, actual: keyCount)
        }
        self.algorithm = algorithm
        self.portableKey = SymmetricKey(data: key)
        self.forcePortable = forcePortable
        self.context = nil
        try install(key)
    }

    /// Replaces the key (a key update), keeping the object: holders need no new reference.
    public func rekey(_ key: some ContiguousBytes) throws(QNSPCryptoError) {
        let keyCount = key.withUnsafeBytes { $0.count }
        guard keyCount == AEADAlgorithm.keySize else {
            throw .invalidKeySize(what: "AEAD key", expected: AEADAlgorithm.keySize, actual: keyCount)
        }
        if let context { qnsp_aead_free(context) }
        context = nil
        portableKey = SymmetricKey(data: key)
        try install(key)
    }

    private func install(_ key: some ContiguousBytes) throws(QNSPCryptoError) {
        if !forcePortable && qnsp_aead_available() == 1 {
            let id: Int32 = algorithm == .aes256GCM ? Int32(QNSP_AEAD_AES_256_GCM) : Int32(QNSP_AEAD_CHACHA20_POLY1305)
            self.context = key.withUnsafeBytes { raw in
                qnsp_aead_new(id, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count)
            }
            if self.context == nil { throw .aeadFailure }
        }
    }

    deinit {
        if let context { qnsp_aead_free(context) }
    }

    /// Seals `plaintext` into `output` as ciphertext || tag; `output.count` must be `plaintext.count + 16`.
    public func seal(
        nonce: UnsafeRawBufferPointer,
        plaintext: UnsafeRawBufferPointer,
        additionalData: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        into output: UnsafeMutableRawBufferPointer
    ) throws(QNSPCryptoError) {
        guard nonce.count == AEADAlgorithm.nonceSize, output.count == plaintext.count + AEADAlgorithm.tagSize else {
            throw .aeadFailure
        }
        if let context {
            let ok = qnsp_aead_seal(
                context, output.baseAddress?.assumingMemoryBound(to: UInt8.self), output.count,
                nonce.baseAddress?.assumingMemoryBound(to: UInt8.self),
                plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), plaintext.count,
                additionalData.baseAddress?.assumingMemoryBound(to: UInt8.self), additionalData.count)
            guard ok == 1 else { throw .aeadFailure }
            return
        }
        do {
            let ct: Data
            let tag: Data
            switch algorithm {
            case .aes256GCM:
                let box = try AES.GCM.seal(plaintext, using: portableKey, nonce: AES.GCM.Nonce(data: nonce), authenticating: additionalData)
                ct = box.ciphertext; tag = box.tag
            case .chaCha20Poly1305:
                let box = try ChaChaPoly.seal(plaintext, using: portableKey, nonce: ChaChaPoly.Nonce(data: nonce), authenticating: additionalData)
                ct = box.ciphertext; tag = box.tag
            }
            ct.copyBytes(to: UnsafeMutableRawBufferPointer(rebasing: output[0..<ct.count]))
            tag.copyBytes(to: UnsafeMutableRawBufferPointer(rebasing: output[ct.count...]))
        } catch {
            throw .aeadFailure
        }
    }

    /// Opens ciphertext || tag into `output` (`sealed.count - 16` bytes); throws `.authenticationFailed` on any mismatch.
    public func open(
        nonce: UnsafeRawBufferPointer,
        sealed: UnsafeRawBufferPointer,
        additionalData: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        into output: UnsafeMutableRawBufferPointer
    ) throws(QNSPCryptoError) {
        guard nonce.count == AEADAlgorithm.nonceSize, sealed.count >= AEADAlgorithm.tagSize,
            output.count == sealed.count - AEADAlgorithm.tagSize
        else { throw .authenticationFailed }
        if let context {
            let ok = qnsp_aead_open(
                context, output.baseAddress?.assumingMemoryBound(to: UInt8.self), output.count,
                nonce.baseAddress?.assumingMemoryBound(to: UInt8.self),
                sealed.baseAddress?.assumingMemoryBound(to: UInt8.self), sealed.count,
                additionalData.baseAddress?.assumingMemoryBound(to: UInt8.self), additionalData.count)
            guard ok == 1 else { throw .authenticationFailed }
            return
        }
        let split = sealed.count - AEADAlgorithm.tagSize
        let ct = UnsafeRawBufferPointer(rebasing: sealed[0..<split])
        let tag = UnsafeRawBufferPointer(rebasing: sealed[split...])
        do {
            let plain: Data
            switch algorithm {
            case .aes256GCM:
                let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: ct, tag: tag)
                plain = try AES.GCM.open(box, using: portableKey, authenticating: additionalData)
            case .chaCha20Poly1305:
                let box = try ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: nonce), ciphertext: ct, tag: tag)
                plain = try ChaChaPoly.open(box, using: portableKey, authenticating: additionalData)
            }
            plain.copyBytes(to: output)
        } catch {
            throw .authenticationFailed
        }
    }

    // MARK: Array conveniences (handshake-sized messages)

    /// Seals a byte array and returns ciphertext || tag.
    public func seal(nonce: [UInt8], plaintext: [UInt8], additionalData: [UInt8] = []) throws(QNSPCryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: plaintext.count + AEADAlgorithm.tagSize)
        do {
            try nonce.withUnsafeBytes { n in
                try plaintext.withUnsafeBytes { p in
                    try additionalData.withUnsafeBytes { a in
                        try out.withUnsafeMutableBytes { o in try self.seal(nonce: n, plaintext: p, additionalData: a, into: o) }
                    }
                }
            }
        } catch let e as QNSPCryptoError { throw e } catch { throw .aeadFailure }
        return out
    }

    /// Opens ciphertext || tag and returns the plaintext.
    public func open(nonce: [UInt8], sealed: [UInt8], additionalData: [UInt8] = []) throws(QNSPCryptoError) -> [UInt8] {
        guard sealed.count >= AEADAlgorithm.tagSize else { throw .authenticationFailed }
        var out = [UInt8](repeating: 0, count: sealed.count - AEADAlgorithm.tagSize)
        do {
            try nonce.withUnsafeBytes { n in
                try sealed.withUnsafeBytes { s in
                    try additionalData.withUnsafeBytes { a in
                        try out.withUnsafeMutableBytes { o in try self.open(nonce: n, sealed: s, additionalData: a, into: o) }
                    }
                }
            }
        } catch let e as QNSPCryptoError { throw e } catch { throw .authenticationFailed }
        return out
    }
}
