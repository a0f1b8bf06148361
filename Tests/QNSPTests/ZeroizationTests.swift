@testable import QNSP
import QNSPCrypto
import Testing

@Suite("Zeroization: secrets are wiped in place, not in copies")
struct ZeroizationTests {
    @Test("SecretBytes.wipe clears the one buffer every holder reads; init(wiping:) clears its source")
    func secretBytes() {
        var source = [UInt8](repeating: 0xA5, count: 32)
        let secret = SecretBytes(wiping: &source)
        #expect(source.isEmpty)
        let holder = secret  // a second reference, like a copied struct holding it
        let address = secret.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(!secret.isZero)
        secret.wipe()
        // Read the very memory the secret occupied: zeros, seen through every holder.
        let bytes = holder.withUnsafeBytes { raw in
            #expect(UInt(bitPattern: raw.baseAddress) == address)
            return Array(raw)
        }
        #expect(bytes == [UInt8](repeating: 0, count: 32))
    }

    @Test("KeySchedule.wipe clears the early, handshake and master secrets of every copy")
    func keySchedule() {
        var schedule = KeySchedule(staticSharedSecret: [UInt8](repeating: 1, count: 32))
        schedule.mixEphemeral([UInt8](repeating: 2, count: 32), clientHelloHash: [UInt8](repeating: 3, count: 32))
        schedule.deriveMaster(serverHelloHash: [UInt8](repeating: 4, count: 32))
        let copy = schedule  // what `if var` or a phase payload made before: a copy sharing the secrets
        let secrets = [copy.earlySecret, copy.handshakeSecret, copy.masterSecret].compactMap { $0 }
        #expect(secrets.count == 3)
        #expect(secrets.allSatisfy { !$0.isZero })
        schedule.wipe()
        #expect(secrets.allSatisfy { $0.isZero })
        #expect(copy.earlySecret.isZero)
    }

    @Test("a key update wipes the old traffic secret; the caller's secret is not touched")
    func keyUpdateWipes() throws {
        let given = TrafficSecret(secret: SecretBytes(copying: [UInt8](repeating: 0x42, count: 32)))
        let sealer = try CellSealer(algorithm: .aes256GCM, secret: given, cellSize: 768)
        let old = sealer.secret
        try sealer.updateKey()
        #expect(old.secret.isZero)
        #expect(!sealer.secret.secret.isZero)
        #expect(!given.secret.isZero)  // the sealer keeps its own copy
        let opener = try CellOpener(algorithm: .aes256GCM, secret: given, cellSize: 768)
        let openerOld = opener.secret
        try opener.updateKey()
        #expect(openerOld.secret.isZero)
    }

    @Test("after a handshake the server's schedule secrets are gone and its traffic secrets are live")
    func handshakeLeavesNoSchedule() {
        let p = Pair().run()
        #expect(p.established)
        #expect(p.server.transcript.isEmpty)
        #expect(p.client.transcript.isEmpty)
        #expect(p.server.sealer.map { !$0.secret.secret.isZero } == true)
    }
}
