// MARK: - HPKE ciphertext

/// The output of `EncryptWithLabel`: a KEM output and an AEAD ciphertext.
public struct HPKECiphertext: Hashable, Sendable, MLSCodable {
    public var kemOutput: [UInt8]
    public var ciphertext: [UInt8]

    public init(kemOutput: [UInt8], ciphertext: [UInt8]) {
        self.kemOutput = kemOutput
        self.ciphertext = ciphertext
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeOpaque(kemOutput)
        writer.writeOpaque(ciphertext)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        kemOutput = try reader.readOpaque()
        ciphertext = try reader.readOpaque()
    }
}
