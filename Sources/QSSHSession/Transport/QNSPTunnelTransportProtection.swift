import NIOCore
import NIOSSH

/// The inner SSH-2 transport protection for sessions whose both ends are qssh/qsshd: SSH
/// binary packets are framed as usual but neither encrypted nor MACed, because they travel
/// only inside a QNSP session, which already encrypts and authenticates every byte (bound to
/// its handshake transcript). This removes the second layer of AES-GCM from every byte.
///
/// It is negotiated like any cipher ("qnsp-tunnel@qssh", listed first by both ends); a stock
/// OpenSSH peer (through `qssh tunnel`, or sshd behind `--bridge`) does not know it, so those
/// sessions negotiate AES-GCM as before. It is only ever offered on an SSH connection that
/// runs inside QNSP, so it cannot weaken a connection that is not protected by QNSP.
public final class QNSPTunnelTransportProtection: NIOSSHTransportProtection {
    public static var cipherName: String { "qnsp-tunnel@qssh" }
    public static var macName: String? { nil }
    public static var cipherBlockSize: Int { 8 }
    public static var keySizes: ExpectedKeySizes { ExpectedKeySizes(ivSize: 0, encryptionKeySize: 0, macKeySize: 0) }

    public var macBytes: Int { 0 }
    public var lengthEncrypted: Bool { false }

    public init(initialKeys: NIOSSHSessionKeys) throws {}

    public func updateKeys(_ newKeys: NIOSSHSessionKeys) throws {}

    public func decryptFirstBlock(_ source: inout ByteBuffer) throws {}

    /// Checks the framing (RFC 4253 §6: length, padding length ≥ 4, payload, padding; packet length a
    /// multiple of 8, as swift-nio-ssh pads when the length is sent in clear) and returns the payload.
    public func decryptAndVerifyRemainingPacket(_ source: inout ByteBuffer, sequenceNumber: UInt32) throws -> ByteBuffer {
        guard let length = source.readInteger(as: UInt32.self), let padding = source.readInteger(as: UInt8.self),
              Int(length) == source.readableBytes + 1, padding >= 4, Int(padding) <= source.readableBytes,
              Int(length) % Self.cipherBlockSize == 0,  // the length field is not counted when it is not encrypted
              let payload = source.readSlice(length: source.readableBytes - Int(padding))
        else {
            throw QNSPTunnelFramingError()
        }
        source.moveReaderIndex(forwardBy: Int(padding))
        return SSHInboundRepair.repair(payload)
    }

    public func encryptPacket(_ destination: inout ByteBuffer, sequenceNumber: UInt32) throws {}

    /// The schemes for an SSH connection inside QNSP: this one first, then AES-GCM (so that stock
    /// OpenSSH, asyncssh and paramiko peers still agree on it), in our implementation that passes
    /// every payload through ``SSHInboundRepair``; swift-nio-ssh's own schemes of the same names
    /// are replaced, any others kept.
    public static func preferred(after defaults: [NIOSSHTransportProtection.Type]) -> [NIOSSHTransportProtection.Type] {
        let ours: [NIOSSHTransportProtection.Type] = [
            QNSPTunnelTransportProtection.self, RepairingAES256GCMTransportProtection.self, RepairingAES128GCMTransportProtection.self,
        ]
        let names = Set(ours.map { $0.cipherName })
        return ours + defaults.filter { !names.contains($0.cipherName) }
    }
}

/// A packet inside the tunnel did not have valid SSH framing.
public struct QNSPTunnelFramingError: Error, CustomStringConvertible {
    public var description: String { "malformed SSH packet inside the tunnel" }
}
