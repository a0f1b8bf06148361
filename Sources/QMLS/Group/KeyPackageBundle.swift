// MARK: - Key package with its private keys

/// A KeyPackage together with the private keys its owner needs to join from a Welcome.
/// Store it (secretly) until the key package is used, then discard it.
public struct KeyPackageBundle: Sendable {
    public var keyPackage: KeyPackage
    public var initPrivateKey: [UInt8]
    public var encryptionPrivateKey: [UInt8]
    public var signingKey: SignaturePrivateKey

    public init(
        keyPackage: KeyPackage,
        initPrivateKey: [UInt8],
        encryptionPrivateKey: [UInt8],
        signingKey: SignaturePrivateKey
    ) {
        self.keyPackage = keyPackage
        self.initPrivateKey = initPrivateKey
        self.encryptionPrivateKey = encryptionPrivateKey
        self.signingKey = signingKey
    }

    /// Default capabilities of a QMLS client for `suite`.
    public static func defaultCapabilities(_ suite: CipherSuite) -> Capabilities {
        Capabilities(cipherSuites: [suite], credentials: [.basic, .x509])
    }

    /// Default lifetime: one hour back (clock skew) to 90 days ahead.
    public static func defaultLifetime(now: UInt64) -> Lifetime {
        Lifetime(notBefore: now >= 3600 ? now - 3600 : 0, notAfter: now + 90 * 24 * 3600)
    }

    /// Creates and signs a fresh key package.
    public static func create(
        suite: CipherSuite,
        credential: Credential,
        signingKey: SignaturePrivateKey,
        capabilities: Capabilities? = nil,
        lifetime: Lifetime? = nil,
        leafExtensions: [Extension] = [],
        extensions: [Extension] = [],
        now: UInt64? = nil
    ) throws(MLSError) -> KeyPackageBundle {
        let provider: CipherSuiteProvider
        do {
            provider = try CipherSuiteProvider(suite)
        } catch {
            throw .crypto(error)
        }
        let time = now ?? MLSGroupConfiguration().clock()
        do {
            let initKeys = try provider.generateHPKEKeyPair()
            let leafKeys = try provider.generateHPKEKeyPair()
            var leaf = LeafNode(
                encryptionKey: leafKeys.publicKey,
                signatureKey: signingKey.publicKey,
                credential: credential,
                capabilities: capabilities ?? defaultCapabilities(suite),
                source: .keyPackage(lifetime ?? defaultLifetime(now: time)),
                extensions: leafExtensions,
                signature: []
            )
            try leaf.sign(with: signingKey, provider: provider, groupID: [], leafIndex: LeafIndex(0))
            var keyPackage = KeyPackage(
                cipherSuite: suite,
                initKey: initKeys.publicKey,
                leafNode: leaf,
                extensions: extensions,
                signature: []
            )
            keyPackage.signature = try provider.signWithLabel(
                signingKey,
                label: "KeyPackageTBS",
                content: keyPackage.toBeSigned
            )
            return KeyPackageBundle(
                keyPackage: keyPackage,
                initPrivateKey: initKeys.privateKey,
                encryptionPrivateKey: leafKeys.privateKey,
                signingKey: signingKey
            )
        } catch {
            throw .crypto(error)
        }
    }
}
