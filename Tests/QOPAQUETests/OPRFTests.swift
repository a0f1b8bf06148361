import Testing

@testable import QOPAQUE

/// RFC 9497 Appendix A.1.1 (ristretto255-SHA512, OPRF mode): DeriveKeyPair, Blind, BlindEvaluate and
/// Finalize against the specification's vectors — a check of the OPRF independent of OPAQUE's.
@Suite("OPRF ristretto255-SHA512 (RFC 9497)")
struct OPRFTests {
    static let seed = Hex.decode(String(repeating: "a3", count: 32))
    static let keyInfo = Hex.decode("74657374206b6579")
    static let skSm = "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e"
    static let blind = "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706"

    struct Vector: Sendable, CustomTestStringConvertible {
        let input: String
        let blindedElement: String
        let evaluationElement: String
        let output: String
        var testDescription: String { "input \(input)" }
    }

    static let vectors = [
        Vector(
            input: "00",
            blindedElement: "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c",
            evaluationElement: "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e",
            output: "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3"
                + "ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6"
        ),
        Vector(
            input: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
            blindedElement: "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
            evaluationElement: "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
            output: "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4"
                + "f2a6413a6bf6fa5e19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73"
        ),
    ]

    @Test("DeriveKeyPair(Seed, KeyInfo) gives skSm")
    func deriveKeyPair() throws {
        let pair = try OPRF.deriveKeyPair(seed: Self.seed, info: Self.keyInfo)
        #expect(Hex.encode(pair.privateKey) == Self.skSm)
    }

    @Test("Blind, BlindEvaluate and Finalize give the specification's elements and output", arguments: vectors)
    func evaluate(_ vector: Vector) throws {
        let key = try Ristretto255Scalar(canonical: Hex.decode(Self.skSm))
        let blind = try Ristretto255Scalar(canonical: Hex.decode(Self.blind))
        let input = Hex.decode(vector.input)
        let blinded = try OPRF.blind(input, blind: blind)
        #expect(Hex.encode(blinded.bytes) == vector.blindedElement)
        let evaluated = try OPRF.blindEvaluate(key: key, blindedElement: blinded)
        #expect(Hex.encode(evaluated.bytes) == vector.evaluationElement)
        let output = try OPRF.finalize(input: SecretBytes(copying: input), blind: blind, evaluatedElement: evaluated)
        #expect(Hex.encode(output) == vector.output)
    }

    @Test(
        "expand_message_xmd(SHA-512) matches RFC 9380 Appendix K.3",
        arguments: [
            ("", 32, "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba"),
            ("abc", 32, "0da749f12fbe5483eb066a5f595055679b976e93abe9be6f0f6318bce7aca8dc"),
            ("abcdef0123456789", 32, "087e45a86e2939ee8b91100af1583c4938e0f5fc6c9db4b107b83346bc967f58"),
            (
                "", 128,
                "41b037d1734a5f8df225dd8c7de38f851efdb45c372887be655212d07251b921b052b62eaed99b46f72f2ef4cc96bfaf"
                    + "254ebbbec091e1a3b9e4fb5e5b619d2e0c5414800a1d882b62bb5cd1778f098b8eb6cb399d5d9d18f5d5842cf5d13d7e"
                    + "b00a7cff859b605da678b318bd0e65ebff70bec88c753b159a805d2c89c55961"
            ),
        ]
    )
    func expandMessage(message: String, length: Int, expected: String) {
        let dst = Array("QUUX-V01-CS02-with-expander-SHA512-256".utf8)
        let out = ExpandMessageXMD.sha512(message: Array(message.utf8), dst: dst, length: length)
        #expect(Hex.encode(out) == expected)
    }
}
