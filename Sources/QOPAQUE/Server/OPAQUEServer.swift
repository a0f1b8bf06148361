/// The server side of OPAQUE (RFC 9807 §5 and §6), sans-I/O and stateless between messages: answer a
/// ``RegistrationRequest`` with ``registrationResponse(to:credentialIdentifier:)``, store the client's
/// ``RegistrationRecord``; answer a ``KE1`` with
/// ``startLogin(ke1:record:credentialIdentifier:serverIdentity:clientIdentity:)``,
/// keep the returned ``OPAQUEServerLogin`` and finish it with the client's ``KE3``.
///
/// Unknown users get a fake record (``fakeRecord(credentialIdentifier:)``): the KE2 looks like a real one
/// and the login fails at KE3 with the same error as a wrong password.
package struct OPAQUEServer: Sendable {
    package let setup: OPAQUEServerSetup
    /// Only the context is used here: the KSF runs on the client.
    package let configuration: OPAQUEConfiguration

    package init(setup: OPAQUEServerSetup, configuration: OPAQUEConfiguration) {
        self.setup = setup
        self.configuration = configuration
    }

    // MARK: - Registration

    /// CreateRegistrationResponse(request, server_public_key, credential_identifier, oprf_seed).
    package func registrationResponse(
        to request: RegistrationRequest,
        credentialIdentifier: [UInt8]
    ) throws(OPAQUEError) -> RegistrationResponse {
        let key = try oprfKey(credentialIdentifier: credentialIdentifier)
        let evaluated = try OPRF.blindEvaluate(key: key, blindedElement: request.blindedMessage)
        return RegistrationResponse(evaluatedMessage: evaluated, serverPublicKey: setup.publicKey)
    }

    /// oprf_key = DeriveKeyPair(Expand(oprf_seed, credential_identifier || "OprfKey", Nok), "OPAQUE-DeriveKeyPair").
    func oprfKey(credentialIdentifier: [UInt8]) throws(OPAQUEError) -> Ristretto255Scalar {
        try Self.checkIdentifier(credentialIdentifier)
        let seed = SHA512KDF.expand(
            prk: setup.oprfSeed,
            info: [credentialIdentifier, Bytes.ascii("OprfKey")],
            length: Ristretto255Scalar.size
        )
        return try OPRF.deriveKeyPair(seed: seed, info: Bytes.ascii("OPAQUE-DeriveKeyPair")).privateKey
    }

    // MARK: - Fake records (RFC 9807 §6.3.2.2, §10.9)

    /// The fake record answered for an unknown `credentialIdentifier`: client_public_key and masking_key
    /// derived from the server's fake-record seed and the identifier, envelope all zeros. Deterministic,
    /// so repeated probes for one unknown name see one consistent "account", as they would a real one:
    ///
    ///     info = "QOPAQUE-FakeRecord-v1" || I2OSP(len(credential_identifier), 2) || credential_identifier
    ///     masking_key = Expand(fake_record_seed, info || "MaskingKey", Nh)
    ///     (_, client_public_key) = DeriveDiffieHellmanKeyPair(Expand(fake_record_seed, info || "KeySeed", Nseed))
    package func fakeRecord(credentialIdentifier: [UInt8]) throws(OPAQUEError) -> RegistrationRecord {
        try Self.checkIdentifier(credentialIdentifier)
        let info =
            Bytes.ascii("QOPAQUE-FakeRecord-v1") + Bytes.i2osp2(credentialIdentifier.count) + credentialIdentifier
        let maskingKey = SHA512KDF.expand(
            prk: setup.fakeRecordSeed,
            info: [info, Bytes.ascii("MaskingKey")],
            length: 64
        )
        let keySeed = SHA512KDF.expand(prk: setup.fakeRecordSeed, info: [info, Bytes.ascii("KeySeed")], length: 32)
        let keyPair = try DiffieHellmanKeyPair.derive(seed: keySeed)
        return RegistrationRecord(
            clientPublicKey: keyPair.publicKey,
            maskingKey: maskingKey.copiedBytes(),
            envelope: .zero
        )
    }

    // MARK: - Login

    /// GenerateKE2 for `record`, or for the fake record when `record` is nil (an unknown user). The fake
    /// record is derived on both paths so that the work, and so the time, does not depend on which one.
    package func startLogin(
        ke1: KE1,
        record: RegistrationRecord?,
        credentialIdentifier: [UInt8],
        serverIdentity: [UInt8]? = nil,
        clientIdentity: [UInt8]? = nil
    ) throws(OPAQUEError) -> (login: OPAQUEServerLogin, ke2: KE2) {
        let fake = try fakeRecord(credentialIdentifier: credentialIdentifier)
        return try generateKE2(
            ke1: ke1,
            record: record ?? fake,
            isFake: record == nil,
            credentialIdentifier: credentialIdentifier,
            serverIdentity: serverIdentity,
            clientIdentity: clientIdentity,
            maskingNonce: SecretBytes.random(count: OPAQUEConfiguration.nonceSize).copiedBytes(),
            serverNonce: SecretBytes.random(count: OPAQUEConfiguration.nonceSize).copiedBytes(),
            keyshareSeed: SecretBytes.random(count: OPAQUEConfiguration.nonceSize),
            trace: nil
        )
    }

    /// GenerateKE2 with given randomness, recording intermediates (test vectors).
    func generateKE2(
        ke1: KE1,
        record: RegistrationRecord,
        isFake: Bool,
        credentialIdentifier: [UInt8],
        serverIdentity: [UInt8]?,
        clientIdentity: [UInt8]?,
        maskingNonce: [UInt8],
        serverNonce: [UInt8],
        keyshareSeed: SecretBytes,
        trace: OPAQUETrace?
    ) throws(OPAQUEError) -> (login: OPAQUEServerLogin, ke2: KE2) {
        precondition(maskingNonce.count == 32 && serverNonce.count == 32, "nonce sizes")

        // MARK: CreateCredentialResponse
        let key = try oprfKey(credentialIdentifier: credentialIdentifier)
        trace?.record("oprf_key", key)
        let evaluated = try OPRF.blindEvaluate(key: key, blindedElement: ke1.credentialRequest.blindedMessage)
        let pad = SHA512KDF.expand(
            prk: record.maskingKey,
            info: [maskingNonce, Bytes.ascii("CredentialResponsePad")],
            length: CredentialResponse.maskedResponseSize
        )
        let masked = Bytes.xor(pad.copiedBytes(), setup.publicKey.bytes + record.envelope.bytes)
        let response = CredentialResponse(
            evaluatedMessage: evaluated,
            maskingNonce: maskingNonce,
            maskedResponse: masked
        )

        // MARK: AuthServerRespond
        let credentials = try CleartextCredentials(
            serverPublicKey: setup.publicKey,
            clientPublicKey: record.clientPublicKey,
            serverIdentity: serverIdentity,
            clientIdentity: clientIdentity
        )
        let keyshare = try DiffieHellmanKeyPair.derive(seed: keyshareSeed)
        let preamble = KeySchedule3DH.preamble(
            context: configuration.context,
            credentials: credentials,
            ke1: ke1,
            credentialResponse: response,
            serverNonce: serverNonce,
            serverPublicKeyshare: keyshare.publicKey
        )
        let dh1 = try ke1.clientPublicKeyshare.diffieHellman(keyshare.privateKey)
        let dh2 = try ke1.clientPublicKeyshare.diffieHellman(setup.keyPair.privateKey)
        let dh3 = try record.clientPublicKey.diffieHellman(keyshare.privateKey)
        let keys = KeySchedule3DH.deriveKeys(ikm: SecretBytes(concatenating: [dh1, dh2, dh3]), preamble: preamble)
        trace?.record("handshake_secret", keys.handshakeSecret)
        trace?.record("server_mac_key", keys.serverMACKey)
        trace?.record("client_mac_key", keys.clientMACKey)
        let serverMAC = KeySchedule3DH.serverMAC(keys: keys, preamble: preamble)
        let expectedClientMAC = KeySchedule3DH.clientMAC(keys: keys, preamble: preamble, serverMAC: serverMAC)
        let ke2 = KE2(
            credentialResponse: response,
            serverNonce: serverNonce,
            serverPublicKeyshare: keyshare.publicKey,
            serverMAC: serverMAC.copiedBytes()
        )
        let login = OPAQUEServerLogin(expectedClientMAC: expectedClientMAC, sessionKey: keys.sessionKey, isFake: isFake)
        return (login, ke2)
    }

    /// Credential identifiers are 0...65535 bytes (the fake-record derivation encodes the length in two bytes).
    private static func checkIdentifier(_ identifier: [UInt8]) throws(OPAQUEError) {
        guard identifier.count <= 0xFFFF else {
            throw .invalidIdentity("credential identifier longer than 65535 bytes")
        }
    }
}
