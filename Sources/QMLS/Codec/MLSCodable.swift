// MARK: - Coding protocols

/// A value with a TLS presentation-language encoding (RFC 9420 §2.1).
public protocol MLSEncodable {
    func encode(to writer: inout MLSWriter)
}

/// A value that decodes from its TLS presentation-language encoding.
public protocol MLSDecodable {
    init(from reader: inout MLSReader) throws(MLSCodecError)
}

/// A value that both encodes and decodes.
public typealias MLSCodable = MLSEncodable & MLSDecodable

extension MLSEncodable {
    /// The value's encoding.
    public var mlsEncoded: [UInt8] {
        var writer = MLSWriter()
        encode(to: &writer)
        return writer.bytes
    }
}

extension MLSDecodable {
    /// Decodes a value that must take up all of `bytes`.
    public init(mlsDecoding bytes: [UInt8]) throws(MLSCodecError) {
        var reader = MLSReader(bytes)
        self = try Self(from: &reader)
        try reader.finish()
    }
}
