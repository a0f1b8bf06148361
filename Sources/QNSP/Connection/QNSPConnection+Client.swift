import QNSPCrypto

// MARK: - Client handshake

extension QNSPConnection {
    func sendClientHello(params: ClientParameters, hostKey: HostPublicKey) throws(QNSPError) {
        let ephemeral = try Self.wrap { () throws(QNSPCryptoError) in try HybridKEM.PrivateKey.generate() }
        let (staticSecret, encapsulation) = try Self.wrap { () throws(QNSPCryptoError) in try hostKey.kem.encapsulate() }
        let schedule = KeySchedule(staticSharedSecret: staticSecret)
        staticSecret.wipe()
        let hello = HandshakeMessages.ClientHello(
            versions: QNSPConfiguration.supportedVersions, ciphers: configuration.ciphers.map(\.rawValue), serverKeyID: hostKey.keyID,
            time: params.clock(), ephemeralKey: ephemeral.publicKey.rawRepresentation, encapsulation: encapsulation, sealedPayload: [])
        let state = ClientHelloState(
            ephemeral: ephemeral, schedule: schedule, hostKey: hostKey, hello: hello, transcriptBeforeHello: transcript.count, retried: false)
        try sealAndSendHello(state)
    }

    /// Seals the hello's payload under a key bound to its prefix and sends it.
    private func sealAndSendHello(_ state: ClientHelloState) throws(QNSPError) {
        var hello = state.hello
        let prefix = hello.prefix
        let payloadKey = state.schedule.clientHelloKey(context: KeySchedule.transcriptHash(transcript + prefix))
        hello.sealedPayload = try Self.wrap { () throws(QNSPCryptoError) in
            try AEADCipher(algorithm: .aes256GCM, key: payloadKey.key)
                .seal(nonce: payloadKey.nonce, plaintext: HandshakeMessages.ClientPayload(service: configuration.service).encoded(), additionalData: prefix)
        }
        sendClear(.clientHello, body: hello.encoded())
        phase = .clientAwaitingServerHello(state)
    }

    func clientHandleClearRecord(_ record: ClearRecord, raw: [UInt8], params: ClientParameters, events: inout [QNSPEvent]) throws(QNSPError) {
        if record.type == .reject {
            let reject = try HandshakeMessages.Reject(decoding: record.body)
            switch HandshakeMessages.Reject.Code(rawValue: reject.code) {
            case .unknownHostKey?, .undecryptable?:
                throw .rejectedByPeer(code: reject.code, message: "the server does not hold the host key pinned for it (host key changed?): \(reject.message)")
            case .unsupportedVersion?:
                throw .unsupportedVersion(offered: QNSPConfiguration.supportedVersions, supported: reject.versions)
            default:
                throw .rejectedByPeer(code: reject.code, message: reject.message)
            }
        }
        guard QNSPConfiguration.supportedVersions.contains(record.version) else {
            throw .unsupportedVersion(offered: QNSPConfiguration.supportedVersions, supported: [record.version])
        }
        switch (phase, record.type) {
        case (.clientAwaitingAnnouncement, .hostKeyAnnouncement):
            let announcement = try HandshakeMessages.HostKeyAnnouncement(decoding: record.body)
            let host: HostPublicKey
            do { host = try HostPublicKey(blob: announcement.hostKeyBlob) } catch { throw .malformedHandshake("announced host key: \(error)") }
            let signed = HandshakeMessages.HostKeyAnnouncement.signedMessage(blob: announcement.hostKeyBlob)
            guard host.signing.isValidSignature(announcement.signature, for: signed, context: KeySchedule.hostAnnouncementContext) else {
                throw .hostKeySignatureInvalid
            }
            var certificate: QNSPCertificate?
            if let blob = announcement.certificate {
                do { certificate = try QNSPCertificate(blob: blob) } catch { throw .malformedHandshake("announced host certificate: \(error)") }
                guard let certificate, certificate.kind == .host, certificate.subject.blob == announcement.hostKeyBlob else {
                    throw .malformedHandshake("the announced host certificate is not for the announced host key")
                }
            }
            transcript += raw
            let trusted = params.verifyHostCertificate.map { $0(host, certificate) } ?? params.verifyHostKey(host)
            guard trusted else { throw .hostKeyNotTrusted(fingerprint: host.fingerprint) }
            try sendClientHello(params: params, hostKey: host)

        case (.clientAwaitingServerHello(var state), .retry):
            // Same keys and encapsulation (the cookie is bound to it), the server's time, the
            // cookie; the first hello and the Retry leave the transcript.
            guard !state.retried else { throw .unexpectedRetry }
            let retry = try HandshakeMessages.Retry(decoding: record.body)
            let offset = Int64(bitPattern: retry.serverTime &- state.hello.time)
            state.hello.time = retry.serverTime
            state.hello.cookie = retry.cookie
            state.retried = true
            state.clockOffset = offset
            transcript.removeSubrange(state.transcriptBeforeHello...)
            try sealAndSendHello(state)
            events.append(.retried(clockOffset: offset))

        case (.clientAwaitingServerHello(let state), .serverHello):
            let ephemeral = state.ephemeral
            var schedule = state.schedule
            let hostKey = state.hostKey
            let offered = state.hello.versions
            let hello = try HandshakeMessages.ServerHello(decoding: record.body)
            let chHash = KeySchedule.transcriptHash(transcript)
            let ephemeralSecret = try Self.wrap { () throws(QNSPCryptoError) in try ephemeral.decapsulate(hello.encapsulation) }
            schedule.mixEphemeral(ephemeralSecret, clientHelloHash: chHash)
            ephemeralSecret.wipe()
            let payloadKey = schedule.serverHelloKey(context: KeySchedule.transcriptHash(transcript + hello.encapsulation))
            let payloadBytes: [UInt8]
            do {
                payloadBytes = try AEADCipher(algorithm: .aes256GCM, key: payloadKey.key)
                    .open(nonce: payloadKey.nonce, sealed: hello.sealedPayload, additionalData: hello.encapsulation)
            } catch {
                throw .serverAuthenticationFailed
            }
            let payload = try HandshakeMessages.ServerPayload(decoding: payloadBytes)
            guard offered.contains(payload.version), payload.version == record.version else {
                throw .unsupportedVersion(offered: offered, supported: [payload.version])
            }
            guard let cipher = AEADAlgorithm(rawValue: payload.cipher), configuration.ciphers.contains(cipher) else { throw .noCommonCipher }
            transcript += raw
            let shHash = KeySchedule.transcriptHash(transcript)
            let hsSecrets = schedule.handshakeTrafficSecrets(serverHelloHash: shHash)
            schedule.deriveMaster(serverHelloHash: shHash)
            sealer = try CellSealer(algorithm: cipher, secret: hsSecrets.client, cellSize: cellSize)
            opener = try CellOpener(algorithm: cipher, secret: hsSecrets.server, cellSize: cellSize)

            // Client authentication, bound to the transcript through the server hello.
            let userKey = params.signer.publicKey
            let presented = params.certificate?.blob ?? userKey.blob
            var auth = HandshakeMessages.ClientAuth(username: params.username, publicKey: presented, signature: [])
            auth.signature = try Self.wrap { () throws(QNSPCryptoError) in
                try params.signer.sign(shHash + auth.signedPart, context: KeySchedule.clientAuthContext)
            }
            let message = try sendEncryptedHandshake(.clientAuth, body: auth.encoded())
            transcript += message
            let app = schedule.applicationSecrets(clientAuthHash: KeySchedule.transcriptHash(transcript))
            schedule.wipe()
            sealer = try CellSealer(algorithm: cipher, secret: app.client, cellSize: cellSize)
            let info = QNSPSessionInfo(
                role: .client, version: payload.version, cipher: cipher, cellSize: cellSize, service: configuration.service,
                username: params.username, userKeyFingerprint: userKey.fingerprint, hostKey: hostKey,
                exporterSecret: app.exporter, firstContact: firstContact, retryClockOffset: state.clockOffset)
            phase = .clientAwaitingAuthResult(serverApplication: app.server, info: info)

        default:
            throw .unexpectedMessage("clear record \(record.type) in client state \(phaseName)")
        }
    }

    func clientHandleEncryptedHandshake(_ type: HandshakeMessages.EncryptedType, body: [UInt8], events: inout [QNSPEvent]) throws(QNSPError) {
        guard case .clientAwaitingAuthResult(let serverApplication, let info) = phase, type == .authResult else {
            throw .unexpectedMessage("encrypted handshake message \(type) in client state \(phaseName)")
        }
        let result = try HandshakeMessages.AuthResult(decoding: body)
        guard result.accepted else { throw .userNotAuthorized(result.message.isEmpty ? Self.genericRefusal : result.message) }
        opener = try CellOpener(algorithm: info.cipher, secret: serverApplication, cellSize: cellSize)
        transcript.removeAll()
        sessionInfo = info
        phase = .established
        events.append(.established(info))
    }

    var phaseName: String {
        switch phase {
        case .clientIdle: return "idle"
        case .clientAwaitingAnnouncement: return "awaiting host key announcement"
        case .clientAwaitingServerHello: return "awaiting server hello"
        case .clientAwaitingAuthResult: return "awaiting auth result"
        case .serverAwaitingHello: return "awaiting client hello"
        case .serverAwaitingClientAuth: return "awaiting client auth"
        case .serverAwaitingAuthorization: return "awaiting authorization"
        case .established: return "established"
        case .closed: return "closed"
        }
    }
}

/// What a client keeps between sending its hello and the server's answer (a Retry re-sends the
/// same hello with the cookie).
struct ClientHelloState {
    var ephemeral: HybridKEM.PrivateKey
    var schedule: KeySchedule
    var hostKey: HostPublicKey
    /// The hello without its sealed payload.
    var hello: HandshakeMessages.ClientHello
    /// Length of the transcript before the hello (first-contact records stay in it).
    var transcriptBeforeHello: Int
    var retried: Bool
    var clockOffset: Int64?
}
