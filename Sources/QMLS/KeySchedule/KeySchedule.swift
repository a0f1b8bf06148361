// MARK: - Key schedule

/// The MLS key schedule (RFC 9420 §8): from `init_secret`, `commit_secret`, `psk_secret` and the
/// new GroupContext to the joiner, welcome and epoch secrets.
public enum KeySchedule {
    /// `joiner_secret = ExpandWithLabel(Extract(init_secret, commit_secret), "joiner", GC, Nh)`.
    public static func joinerSecret(
        _ provider: CipherSuiteProvider,
        initSecret: [UInt8],
        commitSecret: [UInt8],
        groupContext: [UInt8]
    ) -> [UInt8] {
        let prk = provider.extract(salt: initSecret, ikm: commitSecret)
        return provider.expandWithLabel(
            secret: prk,
            label: "joiner",
            context: groupContext,
            length: provider.hashLength
        )
    }

    /// The intermediate secret from which `welcome_secret` and `epoch_secret` are derived.
    static func memberSecret(_ provider: CipherSuiteProvider, joinerSecret: [UInt8], pskSecret: [UInt8]?) -> [UInt8] {
        let psk = pskSecret ?? [UInt8](repeating: 0, count: provider.hashLength)
        return provider.extract(salt: joinerSecret, ikm: psk)
    }

    /// `welcome_secret = DeriveSecret(Extract(joiner_secret, psk_secret), "welcome")`.
    public static func welcomeSecret(
        _ provider: CipherSuiteProvider,
        joinerSecret: [UInt8],
        pskSecret: [UInt8]?
    ) -> [UInt8] {
        provider.deriveSecret(
            secret: memberSecret(provider, joinerSecret: joinerSecret, pskSecret: pskSecret),
            label: "welcome"
        )
    }

    /// The Welcome key and nonce for the encrypted GroupInfo.
    public static func welcomeKeyAndNonce(
        _ provider: CipherSuiteProvider,
        welcomeSecret: [UInt8]
    ) -> (key: [UInt8], nonce: [UInt8]) {
        (
            provider.expandWithLabel(secret: welcomeSecret, label: "key", context: [], length: provider.aeadKeyLength),
            provider.expandWithLabel(
                secret: welcomeSecret,
                label: "nonce",
                context: [],
                length: provider.aeadNonceLength
            )
        )
    }

    /// Every secret of the epoch described by `groupContext`.
    public static func epochSecrets(
        _ provider: CipherSuiteProvider,
        joinerSecret: [UInt8],
        pskSecret: [UInt8]?,
        groupContext: [UInt8]
    ) -> EpochSecrets {
        let member = memberSecret(provider, joinerSecret: joinerSecret, pskSecret: pskSecret)
        let epoch = provider.expandWithLabel(
            secret: member,
            label: "epoch",
            context: groupContext,
            length: provider.hashLength
        )
        return epochSecrets(provider, epochSecret: epoch)
    }

    /// The secrets derived from an `epoch_secret` (also used at group creation).
    public static func epochSecrets(_ provider: CipherSuiteProvider, epochSecret epoch: [UInt8]) -> EpochSecrets {
        func derive(_ label: String) -> [UInt8] {
            provider.deriveSecret(secret: epoch, label: label)
        }
        return EpochSecrets(
            senderDataSecret: derive("sender data"),
            encryptionSecret: derive("encryption"),
            exporterSecret: derive("exporter"),
            externalSecret: derive("external"),
            confirmationKey: derive("confirm"),
            membershipKey: derive("membership"),
            resumptionPSK: derive("resumption"),
            epochAuthenticator: derive("authentication"),
            initSecret: derive("init")
        )
    }

    /// `MLS-Exporter(label, context, length)`.
    public static func export(
        _ provider: CipherSuiteProvider,
        exporterSecret: [UInt8],
        label: [UInt8],
        context: [UInt8],
        length: Int
    ) -> [UInt8] {
        let derived = provider.expandWithLabel(
            secret: exporterSecret,
            label: label,
            context: [],
            length: provider.hashLength
        )
        return provider.expandWithLabel(
            secret: derived,
            label: "exported",
            context: provider.digest(context),
            length: length
        )
    }

    /// The `init_secret` an external joiner sends with ExternalInit (RFC 9420 §8.3).
    static let externalInitLabel = Array("MLS 1.0 external init secret".utf8)

    // MARK: Pre-shared keys (RFC 9420 §8.4)

    /// `psk_secret` for an ordered list of PSKs with their values; nil (all zero) for none.
    public static func pskSecret(
        _ provider: CipherSuiteProvider,
        psks: [(id: PreSharedKeyID, secret: [UInt8])]
    ) -> [UInt8]? {
        guard !psks.isEmpty else {
            return nil
        }
        let zero = [UInt8](repeating: 0, count: provider.hashLength)
        var pskSecret = zero
        for (index, psk) in psks.enumerated() {
            let extracted = provider.extract(salt: zero, ikm: psk.secret)
            var label = MLSWriter(capacity: 64)
            label.write(psk.id)
            label.writeUInt16(UInt16(index))
            label.writeUInt16(UInt16(psks.count))
            let input = provider.expandWithLabel(
                secret: extracted,
                label: "derived psk",
                context: label.bytes,
                length: provider.hashLength
            )
            pskSecret = provider.extract(salt: input, ikm: pskSecret)
        }
        return pskSecret
    }

    // MARK: Transcript hashes (RFC 9420 §8.2)

    /// `confirmed_transcript_hash = Hash(interim_transcript_hash || ConfirmedTranscriptHashInput)`.
    public static func confirmedTranscriptHash(
        _ provider: CipherSuiteProvider,
        interim: [UInt8],
        commit: AuthenticatedContent
    ) -> [UInt8] {
        provider.digest(interim + commit.confirmedTranscriptHashInput)
    }

    /// `interim_transcript_hash = Hash(confirmed_transcript_hash || InterimTranscriptHashInput)`.
    public static func interimTranscriptHash(
        _ provider: CipherSuiteProvider,
        confirmed: [UInt8],
        confirmationTag: [UInt8]
    ) -> [UInt8] {
        var writer = MLSWriter(capacity: confirmed.count + confirmationTag.count + 2)
        writer.writeRaw(confirmed)
        writer.writeOpaque(confirmationTag)
        return provider.digest(writer.bytes)
    }

    /// `confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash)`.
    public static func confirmationTag(
        _ provider: CipherSuiteProvider,
        confirmationKey: [UInt8],
        confirmedTranscriptHash: [UInt8]
    ) -> [UInt8] {
        provider.mac(key: confirmationKey, data: confirmedTranscriptHash)
    }
}
