import Crypto
import NIOCore
import NIOSSH

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The AES-GCM schemes of OpenSSH (`aes128-gcm@openssh.com`, `aes256-gcm@openssh.com`,
/// RFC 5647 with the length in clear as associated data) as swift-nio-ssh implements them,
/// with one addition: each decrypted payload passes through ``SSHInboundRepair`` before
/// swift-nio-ssh parses it. They replace swift-nio-ssh's own schemes of the same names, so
/// stock OpenSSH, asyncssh and paramiko peers negotiate exactly what they did before.
public class RepairingAESGCMTransportProtection {
    private var outboundKey: SymmetricKey
    private var inboundKey: SymmetricKey
    private var outboundNonce: [UInt8]
    private var inboundNonce: [UInt8]

    class var keySize: Int { preconditionFailure("subclass must give the key size") }

    public required init(initialKeys: NIOSSHSessionKeys) throws {
        (outboundKey, inboundKey, outboundNonce, inboundNonce) = try Self.unpack(initialKeys)
    }

    private static func unpack(_ keys: NIOSSHSessionKeys) throws -> (SymmetricKey, SymmetricKey, [UInt8], [UInt8]) {
        guard keys.outboundEncryptionKey.bitCount == keySize * 8, keys.inboundEncryptionKey.bitCount == keySize * 8,
            keys.initialOutboundIV.count == 12, keys.initialInboundIV.count == 12
        else { throw SSHPacketError.keySize }
        return (keys.outboundEncryptionKey, keys.inboundEncryptionKey, keys.initialOutboundIV, keys.initialInboundIV)
    }

    /// RFC 5647: the last 8 bytes are a big-endian invocation counter (wrapping).
    private static func increment(_ nonce: inout [UInt8]) {
        var i = 11
        while i >= 4 {
            nonce[i] &+= 1
            if nonce[i] != 0 { return }
            i -= 1
        }
    }
}

extension RepairingAESGCMTransportProtection: NIOSSHTransportProtection {
    public static var cipherName: String { "aes\(keySize * 8)-gcm@openssh.com" }
    public static var macName: String? { nil }
    public static var cipherBlockSize: Int { 16 }
    public static var keySizes: ExpectedKeySizes {
        ExpectedKeySizes(ivSize: 12, encryptionKeySize: keySize, macKeySize: 16)
    }
    public var macBytes: Int { 16 }
    public var lengthEncrypted: Bool { false }

    public func updateKeys(_ newKeys: NIOSSHSessionKeys) throws {
        (outboundKey, inboundKey, outboundNonce, inboundNonce) = try Self.unpack(newKeys)
    }

    public func decryptFirstBlock(_ source: inout ByteBuffer) throws {}

    public func decryptAndVerifyRemainingPacket(_ source: inout ByteBuffer, sequenceNumber: UInt32) throws -> ByteBuffer
    {
        guard let length = source.readBytes(length: 4), source.readableBytes >= 16 + 16,
            let ciphertext = source.readBytes(length: source.readableBytes - 16),
            let tag = source.readBytes(length: 16),
            ciphertext.count % 16 == 0
        else { throw SSHPacketError.packetLength }
        let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: inboundNonce), ciphertext: ciphertext, tag: tag)
        let plaintext = try AES.GCM.open(box, using: inboundKey, authenticating: length)
        Self.increment(&inboundNonce)
        guard let padding = plaintext.first, padding >= 4, Int(padding) < plaintext.count else {
            throw SSHPacketError.padding
        }
        var payload = ByteBufferAllocator().buffer(capacity: plaintext.count)
        payload.writeBytes(plaintext.dropFirst().dropLast(Int(padding)))
        return SSHInboundRepair.repair(payload)
    }

    public func encryptPacket(_ destination: inout ByteBuffer, sequenceNumber: UInt32) throws {
        guard let length = destination.getBytes(at: destination.readerIndex, length: 4),
            let body = destination.getBytes(at: destination.readerIndex + 4, length: destination.readableBytes - 4)
        else { throw SSHPacketError.packetLength }
        let box = try AES.GCM.seal(
            body,
            using: outboundKey,
            nonce: AES.GCM.Nonce(data: outboundNonce),
            authenticating: length
        )
        destination.setContiguousBytes(box.ciphertext, at: destination.readerIndex + 4)
        destination.writeContiguousBytes(box.tag)
        Self.increment(&outboundNonce)
    }
}

/// `aes128-gcm@openssh.com` with ``SSHInboundRepair``.
public final class RepairingAES128GCMTransportProtection: RepairingAESGCMTransportProtection {
    override class var keySize: Int { 16 }
}

/// `aes256-gcm@openssh.com` with ``SSHInboundRepair``.
public final class RepairingAES256GCMTransportProtection: RepairingAESGCMTransportProtection {
    override class var keySize: Int { 32 }
}

/// A packet or key that does not fit the AES-GCM scheme.
public enum SSHPacketError: Error, Equatable, CustomStringConvertible {
    case keySize
    case packetLength
    case padding

    public var description: String {
        switch self {
        case .keySize: return "AES-GCM keys of the wrong size"
        case .packetLength: return "an SSH packet of an invalid length"
        case .padding: return "an SSH packet with invalid padding"
        }
    }
}
