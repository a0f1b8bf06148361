/// Blowfish as OpenBSD's bcrypt uses it (`blf.c`): the cipher state, key/salt expansion and block
/// encryption. Only what `BcryptPBKDF` needs; not a general-purpose cipher API.
struct Blowfish {
    var p: [UInt32]
    var s: [UInt32]  // 4 × 256, S-box i at offset 256·i

    /// The initial state: π's fraction (`PiHexWords`).
    init() {
        let pi = PiHexWords.blowfish
        p = Array(pi[0..<18])
        s = Array(pi[18..<(18 + 1024)])
    }

    @inline(__always)
    func f(_ x: UInt32) -> UInt32 {
        let a = s[Int(x >> 24)], b = s[256 + Int((x >> 16) & 0xFF)]
        let c = s[512 + Int((x >> 8) & 0xFF)], d = s[768 + Int(x & 0xFF)]
        return ((a &+ b) ^ c) &+ d
    }

    func encrypt(_ l: inout UInt32, _ r: inout UInt32) {
        var xl = l, xr = r
        xl ^= p[0]
        var i = 1
        while i <= 16 {
            xr ^= f(xl) ^ p[i]
            xl ^= f(xr) ^ p[i + 1]
            i += 2
        }
        xr ^= p[17]
        l = xr
        r = xl
    }

    /// The next 32-bit big-endian word of `data`, wrapping around (`Blowfish_stream2word`).
    static func streamWord(_ data: [UInt8], _ j: inout Int) -> UInt32 {
        var word: UInt32 = 0
        for _ in 0..<4 {
            if j >= data.count { j = 0 }
            word = word << 8 | UInt32(data[j])
            j += 1
        }
        return word
    }

    /// `Blowfish_expandstate`: key into P, then the state re-encrypted with the data mixed in.
    mutating func expand(data: [UInt8], key: [UInt8]) {
        var j = 0
        for i in 0..<18 { p[i] ^= Self.streamWord(key, &j) }
        j = 0
        var l: UInt32 = 0, r: UInt32 = 0
        for i in stride(from: 0, to: 18, by: 2) {
            l ^= Self.streamWord(data, &j); r ^= Self.streamWord(data, &j)
            encrypt(&l, &r)
            p[i] = l; p[i + 1] = r
        }
        for i in stride(from: 0, to: 1024, by: 2) {
            l ^= Self.streamWord(data, &j); r ^= Self.streamWord(data, &j)
            encrypt(&l, &r)
            s[i] = l; s[i + 1] = r
        }
    }

    /// `Blowfish_expand0state`: key into P, then the state re-encrypted (no data).
    mutating func expand0(key: [UInt8]) {
        var j = 0
        for i in 0..<18 { p[i] ^= Self.streamWord(key, &j) }
        var l: UInt32 = 0, r: UInt32 = 0
        for i in stride(from: 0, to: 18, by: 2) {
            encrypt(&l, &r)
            p[i] = l; p[i + 1] = r
        }
        for i in stride(from: 0, to: 1024, by: 2) {
            encrypt(&l, &r)
            s[i] = l; s[i + 1] = r
        }
    }
}
