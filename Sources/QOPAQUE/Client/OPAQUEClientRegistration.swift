/// The client side of OPAQUE registration (RFC 9807 §5), sans-I/O: create it with the password to get
/// the ``RegistrationRequest`` to send, then ``finish(response:serverIdentity:clientIdentity:)`` with the
/// server's ``RegistrationResponse`` to get the ``RegistrationRecord`` to upload and the export key.
///
/// Single use: `finish` may be called once (a second call is a programming error).
package struct OPAQUEClientRegistration: Sendable {
    private enum State: Sendable {
        case awaitingResponse(password: SecretBytes, blind: Ristretto255Scalar)
        case finished
    }

    /// What registration produces on the client.
    package struct Result: Sendable {
        /// The upload for the server (RegistrationRecord, 192 bytes).
        package let record: RegistrationRecord
        /// export_key: an application key only this client can re-derive (RFC 9807 §10.7).
        package let exportKey: SecretBytes
        /// The server public key the record is bound to.
        package let serverPublicKey: Ristretto255Element
    }

    /// The first message, to send to the server.
    package let request: RegistrationRequest
    private let configuration: OPAQUEConfiguration
    private var state: State

    /// CreateRegistrationRequest(password) with a fresh random blind.
    package init(password: some Collection<UInt8>, configuration: OPAQUEConfiguration) throws(OPAQUEError) {
        try self.init(password: password, configuration: configuration, blind: Ristretto255Scalar.random())
    }

    /// CreateRegistrationRequest with a given blind (test vectors).
    init(
        password: some Collection<UInt8>,
        configuration: OPAQUEConfiguration,
        blind: Ristretto255Scalar
    ) throws(OPAQUEError) {
        let secret = try RandomizedPassword.checkedPassword(password)
        request = RegistrationRequest(blindedMessage: try OPRF.blind(secret, blind: blind))
        self.configuration = configuration
        state = .awaitingResponse(password: secret, blind: blind)
    }

    /// FinalizeRegistrationRequest: runs the KSF, builds the envelope and the record.
    package mutating func finish(
        response: RegistrationResponse,
        serverIdentity: [UInt8]? = nil,
        clientIdentity: [UInt8]? = nil
    ) throws(OPAQUEError) -> Result {
        let nonce = SecretBytes.random(count: OPAQUEConfiguration.nonceSize).copiedBytes()
        return try finish(
            response: response,
            serverIdentity: serverIdentity,
            clientIdentity: clientIdentity,
            envelopeNonce: nonce,
            trace: nil
        )
    }

    /// FinalizeRegistrationRequest with a given envelope nonce, recording intermediates (test vectors).
    mutating func finish(
        response: RegistrationResponse,
        serverIdentity: [UInt8]?,
        clientIdentity: [UInt8]?,
        envelopeNonce: [UInt8],
        trace: OPAQUETrace?
    ) throws(OPAQUEError) -> Result {
        guard case .awaitingResponse(let password, let blind) = state else {
            preconditionFailure("OPAQUEClientRegistration.finish called twice")
        }
        state = .finished
        let randomizedPassword = try RandomizedPassword.derive(
            password: password,
            blind: blind,
            evaluatedElement: response.evaluatedMessage,
            keyStretching: configuration.keyStretching
        )
        let stored = try Envelope.store(
            randomizedPassword: randomizedPassword,
            serverPublicKey: response.serverPublicKey,
            serverIdentity: serverIdentity,
            clientIdentity: clientIdentity,
            nonce: envelopeNonce
        )
        trace?.record("randomized_password", randomizedPassword)
        trace?.record("auth_key", stored.authKey)
        trace?.record("masking_key", stored.maskingKey)
        trace?.record("client_public_key", stored.clientPublicKey.bytes)
        trace?.record("envelope", stored.envelope.bytes)
        let record = RegistrationRecord(
            clientPublicKey: stored.clientPublicKey,
            maskingKey: stored.maskingKey.copiedBytes(),
            envelope: stored.envelope
        )
        return Result(record: record, exportKey: stored.exportKey, serverPublicKey: response.serverPublicKey)
    }
}
