/// The client side of an OPAQUE-3DH login (RFC 9807 §6), sans-I/O: create it with the password to get
/// ``ke1`` to send, then ``finish(ke2:serverIdentity:clientIdentity:)`` with the server's KE2 to get KE3,
/// the session key and the export key.
///
/// A wrong password and an unknown user both end in ``OPAQUEError/envelopeRecoveryFailed``. Single use:
/// `finish` may be called once, and after a failure nothing derived is kept.
package struct OPAQUEClientLogin: Sendable {
    private enum State: Sendable {
        case awaitingKE2(password: SecretBytes, blind: Ristretto255Scalar, clientSecret: Ristretto255Scalar)
        case finished
    }

    /// What a successful login produces on the client.
    package struct Result: Sendable {
        /// The last message, for the server.
        package let ke3: KE3
        /// The session key both sides share (Nx = 64 bytes), bound to the whole transcript.
        package let sessionKey: SecretBytes
        /// The export key registration produced, recovered again.
        package let exportKey: SecretBytes
        /// The server public key the envelope vouched for.
        package let serverPublicKey: Ristretto255Element
    }

    /// The first message, to send to the server.
    package let ke1: KE1
    private let configuration: OPAQUEConfiguration
    private var state: State

    /// GenerateKE1(password) with fresh randomness.
    package init(password: some Collection<UInt8>, configuration: OPAQUEConfiguration) throws(OPAQUEError) {
        try self.init(
            password: password,
            configuration: configuration,
            blind: Ristretto255Scalar.random(),
            clientNonce: SecretBytes.random(count: OPAQUEConfiguration.nonceSize).copiedBytes(),
            keyshareSeed: SecretBytes.random(count: OPAQUEConfiguration.nonceSize)
        )
    }

    /// GenerateKE1 with given randomness (test vectors).
    init(
        password: some Collection<UInt8>,
        configuration: OPAQUEConfiguration,
        blind: Ristretto255Scalar,
        clientNonce: [UInt8],
        keyshareSeed: SecretBytes
    ) throws(OPAQUEError) {
        precondition(clientNonce.count == OPAQUEConfiguration.nonceSize, "client nonce size")
        let secret = try RandomizedPassword.checkedPassword(password)
        let request = CredentialRequest(blindedMessage: try OPRF.blind(secret, blind: blind))
        let keyshare = try DiffieHellmanKeyPair.derive(seed: keyshareSeed)
        ke1 = KE1(credentialRequest: request, clientNonce: clientNonce, clientPublicKeyshare: keyshare.publicKey)
        self.configuration = configuration
        state = .awaitingKE2(password: secret, blind: blind, clientSecret: keyshare.privateKey)
    }

    /// GenerateKE3: RecoverCredentials, then AuthClientFinalize.
    package mutating func finish(
        ke2: KE2,
        serverIdentity: [UInt8]? = nil,
        clientIdentity: [UInt8]? = nil
    ) throws(OPAQUEError) -> Result {
        try finish(ke2: ke2, serverIdentity: serverIdentity, clientIdentity: clientIdentity, trace: nil)
    }

    /// GenerateKE3, recording intermediates (test vectors).
    mutating func finish(
        ke2: KE2,
        serverIdentity: [UInt8]?,
        clientIdentity: [UInt8]?,
        trace: OPAQUETrace?
    ) throws(OPAQUEError) -> Result {
        guard case .awaitingKE2(let password, let blind, let clientSecret) = state else {
            preconditionFailure("OPAQUEClientLogin.finish called twice")
        }
        state = .finished

        // MARK: RecoverCredentials
        let response = ke2.credentialResponse
        let randomizedPassword = try RandomizedPassword.derive(
            password: password,
            blind: blind,
            evaluatedElement: response.evaluatedMessage,
            keyStretching: configuration.keyStretching
        )
        let maskingKey = SHA512KDF.expand(prk: randomizedPassword, info: [Bytes.ascii("MaskingKey")], length: 64)
        let pad = SHA512KDF.expand(
            prk: maskingKey,
            info: [response.maskingNonce, Bytes.ascii("CredentialResponsePad")],
            length: CredentialResponse.maskedResponseSize
        )
        let unmasked = Bytes.xor(pad.copiedBytes(), response.maskedResponse)
        // With the right masking key this is the key the server sent at registration, which was
        // validated then; anything else means a wrong password, an unknown user or tampering.
        guard let serverPublicKey = try? Ristretto255Element(validating: unmasked[0..<32], field: .serverPublicKey)
        else { throw .envelopeRecoveryFailed }
        let envelope = try Envelope(bytes: unmasked[32..<128])
        let recovered = try envelope.recover(
            randomizedPassword: randomizedPassword,
            serverPublicKey: serverPublicKey,
            serverIdentity: serverIdentity,
            clientIdentity: clientIdentity
        )
        trace?.record("randomized_password", randomizedPassword)
        trace?.record("masking_key", maskingKey)

        // MARK: AuthClientFinalize
        let dh1 = try ke2.serverPublicKeyshare.diffieHellman(clientSecret)
        let dh2 = try serverPublicKey.diffieHellman(clientSecret)
        let dh3 = try ke2.serverPublicKeyshare.diffieHellman(recovered.clientPrivateKey)
        let ikm = SecretBytes(concatenating: [dh1, dh2, dh3])
        let preamble = KeySchedule3DH.preamble(
            context: configuration.context,
            credentials: recovered.credentials,
            ke1: ke1,
            credentialResponse: response,
            serverNonce: ke2.serverNonce,
            serverPublicKeyshare: ke2.serverPublicKeyshare
        )
        let keys = KeySchedule3DH.deriveKeys(ikm: ikm, preamble: preamble)
        trace?.record("handshake_secret", keys.handshakeSecret)
        trace?.record("server_mac_key", keys.serverMACKey)
        trace?.record("client_mac_key", keys.clientMACKey)
        let expectedServerMAC = KeySchedule3DH.serverMAC(keys: keys, preamble: preamble)
        guard expectedServerMAC.constantTimeEquals(ke2.serverMAC) else { throw .serverAuthenticationFailed }
        let clientMAC = KeySchedule3DH.clientMAC(keys: keys, preamble: preamble, serverMAC: expectedServerMAC)
        return Result(
            ke3: KE3(clientMAC: clientMAC.copiedBytes()),
            sessionKey: keys.sessionKey,
            exportKey: recovered.exportKey,
            serverPublicKey: serverPublicKey
        )
    }
}
