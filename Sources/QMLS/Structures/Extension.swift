// MARK: - Extension

/// One entry of an `Extension extensions<V>` list: a type and opaque data.
public struct Extension: Hashable, Sendable, MLSCodable {
    public var type: ExtensionType
    public var data: [UInt8]

    public init(type: ExtensionType, data: [UInt8]) {
        self.type = type
        self.data = data
    }

    public func encode(to writer: inout MLSWriter) {
        writer.write(type)
        writer.writeOpaque(data)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        type = try reader.read()
        data = try reader.readOpaque()
    }
}

extension Array where Element == Extension {
    /// The data of the first extension of `type`, if any.
    public func data(of type: ExtensionType) -> [UInt8]? {
        first { $0.type == type }?.data
    }

    /// Whether some extension type appears more than once (forbidden by RFC 9420 §13.4).
    public var hasDuplicateTypes: Bool {
        Set(map(\.type)).count != count
    }

    /// The list with the extension of `type` replaced or appended.
    public func setting(_ type: ExtensionType, to data: [UInt8]) -> [Extension] {
        var out = filter { $0.type != type }
        out.append(Extension(type: type, data: data))
        return out
    }
}
