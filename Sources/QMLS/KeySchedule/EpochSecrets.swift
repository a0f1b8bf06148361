// MARK: - Epoch secrets

/// The secrets derived from one epoch's `epoch_secret` (RFC 9420 §8, Table 4).
public struct EpochSecrets: Sendable, Equatable {
    public var senderDataSecret: [UInt8]
    public var encryptionSecret: [UInt8]
    public var exporterSecret: [UInt8]
    public var externalSecret: [UInt8]
    public var confirmationKey: [UInt8]
    public var membershipKey: [UInt8]
    public var resumptionPSK: [UInt8]
    public var epochAuthenticator: [UInt8]
    /// `init_secret` for the next epoch.
    public var initSecret: [UInt8]

    public init(
        senderDataSecret: [UInt8],
        encryptionSecret: [UInt8],
        exporterSecret: [UInt8],
        externalSecret: [UInt8],
        confirmationKey: [UInt8],
        membershipKey: [UInt8],
        resumptionPSK: [UInt8],
        epochAuthenticator: [UInt8],
        initSecret: [UInt8]
    ) {
        self.senderDataSecret = senderDataSecret
        self.encryptionSecret = encryptionSecret
        self.exporterSecret = exporterSecret
        self.externalSecret = externalSecret
        self.confirmationKey = confirmationKey
        self.membershipKey = membershipKey
        self.resumptionPSK = resumptionPSK
        self.epochAuthenticator = epochAuthenticator
        self.initSecret = initSecret
    }
}

extension EpochSecrets: MLSCodable {
    public func encode(to writer: inout MLSWriter) {
        for secret in [
            senderDataSecret, encryptionSecret, exporterSecret, externalSecret, confirmationKey,
            membershipKey, resumptionPSK, epochAuthenticator, initSecret,
        ] {
            writer.writeOpaque(secret)
        }
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        senderDataSecret = try reader.readOpaque()
        encryptionSecret = try reader.readOpaque()
        exporterSecret = try reader.readOpaque()
        externalSecret = try reader.readOpaque()
        confirmationKey = try reader.readOpaque()
        membershipKey = try reader.readOpaque()
        resumptionPSK = try reader.readOpaque()
        epochAuthenticator = try reader.readOpaque()
        initSecret = try reader.readOpaque()
    }
}
