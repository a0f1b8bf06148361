import QSSHTestSupport
import NIOCore
import NIOSSH
import QSSHSession
import Testing

/// The inner SSH-2 "qnsp-tunnel@qssh" scheme: framing only, checked strictly.
@Suite("inner SSH transport inside QNSP")
struct TunnelProtectionTests {
    static let keys = NIOSSHSessionKeys(
        initialInboundIV: [], initialOutboundIV: [], inboundEncryptionKey: .init(data: [UInt8]()), outboundEncryptionKey: .init(data: [UInt8]()),
        inboundMACKey: .init(data: [UInt8]()), outboundMACKey: .init(data: [UInt8]()))

    /// length ‖ padding length ‖ payload ‖ padding, with packet length a multiple of 8.
    func packet(_ payload: [UInt8], padding: Int? = nil) -> ByteBuffer {
        var pad = 8 - (1 + payload.count) % 8
        if pad < 4 { pad += 8 }
        let p = padding ?? pad
        var b = ByteBuffer()
        b.writeInteger(UInt32(1 + payload.count + p))
        b.writeInteger(UInt8(p))
        b.writeBytes(payload)
        b.writeBytes([UInt8](repeating: 0, count: p))
        return b
    }

    @Test("well-formed packets give their payload; bad padding, lengths and alignment are refused")
    func framing() throws {
        let scheme = try QNSPTunnelTransportProtection(initialKeys: Self.keys)
        for size in [0, 1, 2, 3, 10, 1000, 32768] {
            var b = packet(Array(repeating: 7, count: size))
            let payload = try scheme.decryptAndVerifyRemainingPacket(&b, sequenceNumber: 0)
            #expect(payload.readableBytes == size && b.readableBytes == 0)
        }
        var shortPad = packet([1, 2, 3, 4], padding: 3)
        #expect(throws: QNSPTunnelFramingError.self) { _ = try scheme.decryptAndVerifyRemainingPacket(&shortPad, sequenceNumber: 0) }
        var misaligned = packet([1, 2, 3], padding: 5)
        #expect(throws: QNSPTunnelFramingError.self) { _ = try scheme.decryptAndVerifyRemainingPacket(&misaligned, sequenceNumber: 0) }
        var bigPad = packet([1], padding: 255)
        bigPad.moveWriterIndex(to: bigPad.writerIndex - 100)  // the length now claims more than is there
        #expect(throws: QNSPTunnelFramingError.self) { _ = try scheme.decryptAndVerifyRemainingPacket(&bigPad, sequenceNumber: 0) }
        var truncated = ByteBuffer(bytes: [0, 0])
        #expect(throws: QNSPTunnelFramingError.self) { _ = try scheme.decryptAndVerifyRemainingPacket(&truncated, sequenceNumber: 0) }
        var rng = SplitMix(seed: 77)
        for _ in 0..<5000 {
            var b = packet((0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            b.setInteger(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(b.readableBytes)))
            _ = try? scheme.decryptAndVerifyRemainingPacket(&b, sequenceNumber: 0)  // must not crash
        }
    }

    @Test("listed first, before swift-nio-ssh's own schemes, which stay for stock OpenSSH peers")
    func preference() {
        let defaults = SSHServerConfiguration(hostKeys: [NIOSSHPrivateKey(ed25519Key: .init())], userAuthDelegate: QNSPIdentityAuthDelegate()).transportProtectionSchemes
        let ours = QNSPTunnelTransportProtection.preferred(after: defaults)
        #expect(ours.first.map { $0.cipherName } == "qnsp-tunnel@qssh")
        #expect(ours.map { $0.cipherName }.dropFirst() == defaults.map { $0.cipherName }[...])
        #expect(ours.count == defaults.count + 1)
    }
}
