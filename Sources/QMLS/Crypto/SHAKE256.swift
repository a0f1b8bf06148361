// MARK: - SHAKE256 (FIPS 202)

/// SHAKE256 extendable-output function, used only by X-Wing's HPKE DeriveKeyPair
/// (`seed = SHAKE256(ikm, 32)`), which swift-crypto does not expose.
enum SHAKE256 {
    private static let rate = 136

    private static let roundConstants: [UInt64] = [
        0x0000_0000_0000_0001, 0x0000_0000_0000_8082, 0x8000_0000_0000_808A, 0x8000_0000_8000_8000,
        0x0000_0000_0000_808B, 0x0000_0000_8000_0001, 0x8000_0000_8000_8081, 0x8000_0000_0000_8009,
        0x0000_0000_0000_008A, 0x0000_0000_0000_0088, 0x0000_0000_8000_8009, 0x0000_0000_8000_000A,
        0x0000_0000_8000_808B, 0x8000_0000_0000_008B, 0x8000_0000_0000_8089, 0x8000_0000_0000_8003,
        0x8000_0000_0000_8002, 0x8000_0000_0000_0080, 0x0000_0000_0000_800A, 0x8000_0000_8000_000A,
        0x8000_0000_8000_8081, 0x8000_0000_0000_8080, 0x0000_0000_8000_0001, 0x8000_0000_8000_8008,
    ]

    private static let rotations: [UInt64] = [
        0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14,
    ]

    /// SHAKE256 of `input`, `outputLength` bytes long.
    static func hash(_ input: [UInt8], outputLength: Int) -> [UInt8] {
        var state = [UInt64](repeating: 0, count: 25)
        var padded = input
        padded.append(0x1f)
        while padded.count % rate != 0 {
            padded.append(0)
        }
        padded[padded.count - 1] |= 0x80
        var offset = 0
        while offset < padded.count {
            for lane in 0..<(rate / 8) {
                var word: UInt64 = 0
                for byte in 0..<8 {
                    word |= UInt64(padded[offset + lane * 8 + byte]) << UInt64(8 * byte)
                }
                state[lane] ^= word
            }
            permute(&state)
            offset += rate
        }
        var output: [UInt8] = []
        output.reserveCapacity(outputLength)
        while true {
            for lane in 0..<(rate / 8) {
                for byte in 0..<8 {
                    if output.count == outputLength {
                        return output
                    }
                    output.append(UInt8(truncatingIfNeeded: state[lane] >> UInt64(8 * byte)))
                }
            }
            permute(&state)
        }
    }

    private static func rotl(_ x: UInt64, _ n: UInt64) -> UInt64 {
        n == 0 ? x : (x << n) | (x >> (64 - n))
    }

    /// Keccak-f[1600].
    private static func permute(_ a: inout [UInt64]) {
        var c = [UInt64](repeating: 0, count: 5)
        var b = [UInt64](repeating: 0, count: 25)
        for round in 0..<24 {
            for x in 0..<5 {
                c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20]
            }
            for x in 0..<5 {
                let d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1)
                for y in 0..<5 {
                    a[x + 5 * y] ^= d
                }
            }
            for x in 0..<5 {
                for y in 0..<5 {
                    let index = x + 5 * y
                    b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(a[index], rotations[index])
                }
            }
            for x in 0..<5 {
                for y in 0..<5 {
                    a[x + 5 * y] = b[x + 5 * y] ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y])
                }
            }
            a[0] ^= roundConstants[round]
        }
    }
}
