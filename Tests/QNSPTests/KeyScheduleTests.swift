import QNSP
import QNSPCrypto
import Testing

@Suite("Key schedule known answers")
struct KeyScheduleTests {
    @Test("HKDF-SHA-256 matches RFC 5869 test case 1")
    func rfc5869() {
        let ikm = [UInt8](repeating: 0x0b, count: 22)
        let salt = unhex("000102030405060708090a0b0c")
        let info = unhex("f0f1f2f3f4f5f6f7f8f9")
        let prk = KeyDerivation.extract(salt: salt, inputKeyMaterial: ikm)
        #expect(hex(prk) == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
        let okm = KeyDerivation.expand(pseudoRandomKey: prk, info: info, length: 42)
        #expect(hex(okm) == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    }

    @Test("fixed shared secrets and transcript give fixed keys")
    func schedule() {
        var ks = KeySchedule(staticSharedSecret: [UInt8](repeating: 1, count: 32))
        let ch = KeySchedule.transcriptHash(Array("client hello".utf8))
        let chKey = ks.clientHelloKey(context: ch)
        ks.mixEphemeral([UInt8](repeating: 2, count: 32), clientHelloHash: ch)
        let sh = KeySchedule.transcriptHash(Array("client hello|server hello".utf8))
        let shKey = ks.serverHelloKey(context: sh)
        let hs = ks.handshakeTrafficSecrets(serverHelloHash: sh)
        ks.deriveMaster(serverHelloHash: sh)
        let app = ks.applicationSecrets(clientAuthHash: KeySchedule.transcriptHash(Array("...|client auth".utf8)))
        let got = [
            "ch key": hex(chKey.key), "ch iv": hex(chKey.nonce), "sh key": hex(shKey.key),
            "c hs": hex(hs.client.secret), "s hs": hex(hs.server.secret),
            "c ap": hex(app.client.secret), "s ap": hex(app.server.secret), "exporter": hex(app.exporter),
            "c ap key": hex(app.client.key), "c ap iv": hex(app.client.iv), "c ap next": hex(app.client.next.secret),
        ]
        for (k, v) in KeyScheduleTests.expected { #expect(got[k] == v, "\(k) = \(got[k] ?? "nil")") }
        #expect(Set(got.values).count == got.count)  // every label gives a distinct key
    }

    @Test("key generation from fixed seeds is stable")
    func seeds() throws {
        let kem = try HybridKEM.PrivateKey(seed: [UInt8](repeating: 3, count: 32))
        let sig = try SignatureScheme.PrivateKey(seed: [UInt8](repeating: 4, count: 32))
        #expect(hex(KeyDerivation.sha256(kem.publicKey.rawRepresentation)) == KeyScheduleTests.kemPublicHash)
        #expect(hex(KeyDerivation.sha256(sig.publicKey.rawRepresentation)) == KeyScheduleTests.sigPublicHash)
    }

    /// Regression values (swift-crypto 4.5.2): SHA-256 of the public keys from seeds 0x03.. and 0x04...
    static let kemPublicHash = "5b8e64e6709228bd7e4ed2942858a210fa08a85e83ee31c65ef17e119f77755c"
    static let sigPublicHash = "d94ac2152ca366e9430504623536219ac1517f2fe614d3b53e96a1a57cc4733c"
    /// Computed independently by scripts/kat.py (Python, `cryptography` + hashlib).
    static let expected: [String: String] = [
        "ch key": "b872dc54dfcb4d43462069f6d0ec1d81e2c74fe379f43935b2dd08004adf658f",
        "ch iv": "a8a5e45d4c33d901aedb3708",
        "sh key": "558f2cd2461f05fbd7c241b6b14289b921bf7ce1658bc1a3b7cef911a4458587",
        "c hs": "30972efc336360a645e6ac3f86eef5e614ba133082fec0c97ab186f852e5ef35",
        "s hs": "e633ec54602608f1fd397da49b8c0779080849df75ee8d94336f043f1bdee694",
        "c ap": "662860c91319085cfba260702873d3a076cf761be8824e7554d09087a43bf417",
        "s ap": "be90309c7a5b548b6ada8b3896c0353b39bc94c1853d3668116a969fb56ea5bb",
        "exporter": "328c6756a02665e7cdd96ee6a657c92535b646277daebf40ad57626ee363f106",
        "c ap key": "9aa3860391d3d880994d82014b5caff8930929375e954cd5576ac176b6cc6421",
        "c ap iv": "62ae1b76afc4d881f89c1591",
        "c ap next": "f724e380185ef1e14a3ae4da4a971383c92fd57ad240fb363bad50d7a19e3611",
    ]
}
