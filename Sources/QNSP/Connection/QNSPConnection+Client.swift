import QNSPCrypto

// MARK: - Client handshake

extension QNSPConnection {
    func sendClientHello(params: ClientParameters, hostKey: HostPublicKey) throws(QNSPError) {
        let ephemeral = try Self.wrap { () throws(QNSPCryptoError) in try HybridKEM.PrivateKey.generate() }
        let (staticSecret, encapsulation) = try Self.wrap { () throws(QNSPCryptoError) in try hostKey.kem.encapsulate() }
        let schedule = KeySchedule(staticSharedSecret: staticSecret)
        let offered = QNSPConfiguration.supportedVersions
        var hello = HandshakeMessages.ClientHello(
            versions: offered, ciphers: configuration.ciphers.map(\.rawValue), serverKeyID: hostKey.keyID,
            ephemeralKey: ephemeral.publicKey.rawRepresentation, encapsulation: encapsulation, sealedPayload: [])
        let prefix = hello.prefix
        let payloadKey = schedule.clientHelloKey(context: KeySchedule.transcriptHash(transcript + prefix))
        hello.sealedPayload = try Self.wrap { () throws(QNSPCryptoError) in
            try AEADCipher(algorithm: .aes256GCM, key: payloadKey.key)
                .seal(nonce: payloadKey.nonce, plaintext: HandshakeMessages.ClientPayload(service: configuration.service).encoded(), additionalData: prefix)
        }
        sendClear(.clientHello, body: hello.encoded())
        phase = .clientAwaitingServerHello(ephemeral: ephemeral, schedule: schedule, hostKey: hostKey, offered: offered)
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
            let signed = KeySchedule.transcriptHash(transcript) + announcement.hostKeyBlob
            guard host.signing.isValidSignature(announcement.signature, for: signed, context: KeySchedule.hostAnnouncementContext) else {
                throw .hostKeySignatureInvalid
            }
            transcript += raw
            guard params.verifyHostKey(host) else { throw .hostKeyNotTrusted(fingerprint: host.fingerprint) }
            try sendClientHello(params: params, hostKey: host)

        case (.clientAwaitingServerHello(let ephemeral, var schedule, let hostKey, let offered), .serverHello):
            let hello = try HandshakeMessages.ServerHello(decoding: record.body)
            let chHash = KeySchedule.transcriptHash(transcript)
            let ephemeralSecret = try Self.wrap { () throws(QNSPCryptoError) in try ephemeral.decapsulate(hello.encapsulation) }
            schedule.mixEphemeral(ephemeralSecret, clientHelloHash: chHash)
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
            let publicKey = params.user.publicKey.blob
            var auth = HandshakeMessages.ClientAuth(username: params.username, publicKey: publicKey, signature: [])
            auth.signature = try Self.wrap { () throws(QNSPCryptoError) in
                try params.user.signingKey.sign(shHash + auth.signedPart, context: KeySchedule.clientAuthContext)
            }
            let message = try sendEncryptedHandshake(.clientAuth, body: auth.encoded())
            transcript += message
            let app = schedule.applicationSecrets(clientAuthHash: KeySchedule.transcriptHash(transcript))
            schedule.wipe()
            sealer = try CellSealer(algorithm: cipher, secret: app.client, cellSize: cellSize)
            let info = QNSPSessionInfo(
                role: .client, version: payload.version, cipher: cipher, cellSize: cellSize, service: configuration.service,
                username: params.username, userKeyFingerprint: params.user.publicKey.fingerprint, hostKey: hostKey,
                exporterSecret: app.exporter, firstContact: firstContact)
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
        guard result.accepted else { throw .userNotAuthorized(result.message) }
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
        case .established: return "established"
        case .closed: return "closed"
        }
    }
}
