import Crypto
import Foundation
import QNSPCrypto

/// Measures single-core AEAD throughput without any protocol around it: the ceiling the tunnel is compared to.
enum RawAEADBench {
    /// swift-crypto's public `AES.GCM.seal` on `chunk`-byte messages, MB/s (10^6 bytes per second).
    static func swiftCryptoAESGCM(chunk: Int, seconds: Double) -> Double {
        let key = SymmetricKey(size: .bits256)
        let message = Data(repeating: 0x5a, count: chunk)
        var bytes = 0
        var sink = 0
        let start = Clock.now
        while Clock.since(start) < seconds {
            for _ in 0..<32 {
                if let box = try? AES.GCM.seal(message, using: key) { sink &+= Int(box.tag.first ?? 0) }
                bytes += chunk
            }
        }
        blackHole(sink)
        return Double(bytes) / Clock.since(start) / 1e6
    }

    /// QNSP's reusable-context AEAD (the one cells use) on `chunk`-byte messages, MB/s.
    static func qnspCipher(_ algorithm: AEADAlgorithm, chunk: Int, seconds: Double) -> Double {
        guard let cipher = try? AEADCipher(algorithm: algorithm, key: [UInt8](repeating: 7, count: 32)) else { return 0 }
        let plaintext = [UInt8](repeating: 0x5a, count: chunk)
        var output = [UInt8](repeating: 0, count: chunk + AEADAlgorithm.tagSize)
        var nonce = [UInt8](repeating: 0, count: AEADAlgorithm.nonceSize)
        var bytes = 0
        let start = Clock.now
        var counter: UInt64 = 0
        while Clock.since(start) < seconds {
            for _ in 0..<64 {
                counter += 1
                withUnsafeBytes(of: counter.bigEndian) { for i in 0..<8 { nonce[4 + i] = $0[i] } }
                nonce.withUnsafeBytes { n in
                    plaintext.withUnsafeBytes { p in
                        output.withUnsafeMutableBytes { o in try? cipher.seal(nonce: n, plaintext: p, into: o) }
                    }
                }
                bytes += chunk
            }
        }
        blackHole(output[0])
        return Double(bytes) / Clock.since(start) / 1e6
    }

    @inline(never) static func blackHole<T>(_ value: T) { _ = value }
}

/// Monotonic seconds for the benchmarks.
enum Clock {
    static var now: UInt64 { DispatchTime.now().uptimeNanoseconds }
    static func since(_ start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
}
