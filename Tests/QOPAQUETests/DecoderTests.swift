import Testing

@testable import QOPAQUE

/// The strict decoders: exact sizes, canonical non-identity elements, canonical non-zero scalars.
@Suite("OPAQUE message decoders")
struct DecoderTests {
    /// A decoder under test: its name, its exact size, and a function that decodes and re-encodes.
    struct Decoder: Sendable, CustomTestStringConvertible {
        let name: String
        let size: Int
        let roundTrip: @Sendable ([UInt8]) throws -> [UInt8]
        var testDescription: String { name }
    }

    static let decoders: [Decoder] = [
        Decoder(name: "RegistrationRequest", size: 32) { try RegistrationRequest(bytes: $0).bytes },
        Decoder(name: "RegistrationResponse", size: 64) { try RegistrationResponse(bytes: $0).bytes },
        Decoder(name: "RegistrationRecord", size: 192) { try RegistrationRecord(bytes: $0).bytes },
        Decoder(name: "CredentialRequest", size: 32) { try CredentialRequest(bytes: $0).bytes },
        Decoder(name: "CredentialResponse", size: 192) { try CredentialResponse(bytes: $0).bytes },
        Decoder(name: "KE1", size: 96) { try KE1(bytes: $0).bytes },
        Decoder(name: "KE2", size: 320) { try KE2(bytes: $0).bytes },
        Decoder(name: "KE3", size: 64) { try KE3(bytes: $0).bytes },
        Decoder(name: "Envelope", size: 96) { try Envelope(bytes: $0).bytes },
        Decoder(name: "ristretto255 element", size: 32) {
            try Ristretto255Element(validating: $0, field: .element).bytes
        },
    ]

    /// A valid encoding of the given size: copies of a real public key where elements go.
    static func valid(size: Int) throws -> [UInt8] {
        let element = try DiffieHellmanKeyPair.generate().publicKey.bytes
        var out: [UInt8] = []
        while out.count < size {
            out += element
        }
        return Array(out.prefix(size))
    }

    @Test("each decoder accepts its exact size and refuses one byte less or more, and empty input", arguments: decoders)
    func lengths(_ decoder: Decoder) throws {
        let good = try Self.valid(size: decoder.size)
        #expect(try decoder.roundTrip(good) == good)
        for bad in [Array(good.dropLast()), good + [0], []] {
            let error = #expect(throws: OPAQUEError.self) { _ = try decoder.roundTrip(bad) }
            if case .invalidLength = error {
            } else {
                Issue.record("\(decoder.name) of \(bad.count) bytes: \(String(describing: error))")
            }
        }
    }

    /// Non-canonical ristretto255 encodings: a negative field element (odd), a value >= p, all ones.
    static let nonCanonical: [[UInt8]] = [
        [0x01] + [UInt8](repeating: 0, count: 31),
        [0xed] + [UInt8](repeating: 0xff, count: 30) + [0x7f],
        [UInt8](repeating: 0xff, count: 32),
    ]

    @Test("elements: the identity and non-canonical encodings are refused with the field's name")
    func elements() {
        #expect(throws: OPAQUEError.identityElement(.blindedMessage)) {
            _ = try RegistrationRequest(bytes: [UInt8](repeating: 0, count: 32))
        }
        for bad in Self.nonCanonical {
            #expect(throws: OPAQUEError.invalidElement(.blindedMessage)) { _ = try CredentialRequest(bytes: bad) }
        }
    }

    @Test("every element field of every message is validated")
    func everyElementField() throws {
        let identity = [UInt8](repeating: 0, count: 32)
        let cases:
            [(name: String, size: Int, offset: Int, field: OPAQUEError.Field, decode: ([UInt8]) throws -> Void)] = [
                ("RegistrationResponse", 64, 0, .evaluatedMessage, { _ = try RegistrationResponse(bytes: $0) }),
                ("RegistrationResponse", 64, 32, .serverPublicKey, { _ = try RegistrationResponse(bytes: $0) }),
                ("RegistrationRecord", 192, 0, .clientPublicKey, { _ = try RegistrationRecord(bytes: $0) }),
                ("CredentialResponse", 192, 0, .evaluatedMessage, { _ = try CredentialResponse(bytes: $0) }),
                ("KE1", 96, 0, .blindedMessage, { _ = try KE1(bytes: $0) }),
                ("KE1", 96, 64, .clientPublicKeyshare, { _ = try KE1(bytes: $0) }),
                ("KE2", 320, 0, .evaluatedMessage, { _ = try KE2(bytes: $0) }),
                ("KE2", 320, 224, .serverPublicKeyshare, { _ = try KE2(bytes: $0) }),
            ]
        for item in cases {
            var withIdentity = try Self.valid(size: item.size)
            withIdentity.replaceSubrange(item.offset..<(item.offset + 32), with: identity)
            #expect(throws: OPAQUEError.identityElement(item.field), "\(item.name) @\(item.offset)") {
                try item.decode(withIdentity)
            }
            var nonCanonical = try Self.valid(size: item.size)
            nonCanonical.replaceSubrange(item.offset..<(item.offset + 32), with: Self.nonCanonical[1])
            #expect(throws: OPAQUEError.invalidElement(item.field), "\(item.name) @\(item.offset)") {
                try item.decode(nonCanonical)
            }
        }
    }

    @Test("scalars: L - 1 is accepted; zero, L, 2^255 - 1 and wrong sizes are refused")
    func scalars() throws {
        let order: [UInt8] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
        ]
        var orderMinusOne = order
        orderMinusOne[0] -= 1
        _ = try Ristretto255Scalar(canonical: orderMinusOne)
        let bad: [[UInt8]] = [
            [UInt8](repeating: 0, count: 32), order, [UInt8](repeating: 0xff, count: 31) + [0x7f],
            [UInt8](repeating: 1, count: 31), [UInt8](repeating: 1, count: 33),
        ]
        for candidate in bad {
            #expect(throws: OPAQUEError.self) { _ = try Ristretto255Scalar(canonical: candidate) }
        }
    }
}
