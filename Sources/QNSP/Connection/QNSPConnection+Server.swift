import QNSPCrypto

// MARK: - Server handshake

extension QNSPConnection {
    /// A complete clear Reject record, for a server that refuses a connection before any
    /// handshake (e.g. too many connections): unauthenticated and advisory, like every Reject.
    public static func rejectRecord(code: HandshakeMessages.Reject.Code, message: String) -> [UInt8] {
        ClearRecord(version: QNSPConfiguration.supportedVersions.max() ?? 1, type: .reject, cellSize: QNSPConfiguration.defaultCellSize,
                    body: HandshakeMessages.Reject(code: code, message: message).encoded()).encoded()
    }

    /// Queues a clear reject record and returns `error` for the caller to throw.
    func reject(_ code: HandshakeMessages.Reject.Code, _ message: String, _ error: QNSPError) -> QNSPError {
        sendClear(.reject, body: HandshakeMessages.Reject(code: code, message: message).encoded())
        return error
    }

    func serverHandleClearRecord(_ record: ClearRecord, raw: [UInt8], params: ServerParameters, events: inout [QNSPEvent]) throws(QNSPError) {
        guard case .serverAwaitingHello(let announced) = phase else {
            throw .unexpectedMessage("clear record \(record.type) in server state \(phaseName)")
        }
        if !announced { cellSize = record.cellSize }
        guard QNSPConfiguration.supportedVersions.contains(record.version) else {
            throw reject(.unsupportedVersion, "this server speaks QNSP versions \(QNSPConfiguration.supportedVersions)",
                         .unsupportedVersion(offered: [record.version], supported: QNSPConfiguration.supportedVersions))
        }
        guard let primary = params.hostKeys.first else { throw .keyMaterial("server has no host key") }
        switch record.type {
        case .hostKeyRequest where !announced:
            let request = try HandshakeMessages.HostKeyRequest(decoding: record.body)
            guard request.versions.contains(record.version) else { throw .malformedHandshake("host key request version list") }
            transcript += raw
            let blob = primary.publicKey.blob
            let signature = try Self.wrap { () throws(QNSPCryptoError) in
                try primary.signingKey.sign(KeySchedule.transcriptHash(transcript) + blob, context: KeySchedule.hostAnnouncementContext)
            }
            sendClear(.hostKeyAnnouncement, body: HandshakeMessages.HostKeyAnnouncement(hostKeyBlob: blob, signature: signature).encoded())
            firstContact = true
            phase = .serverAwaitingHello(announced: true)

        case .clientHello:
            let hello = try HandshakeMessages.ClientHello(decoding: record.body)
            let common = hello.versions.filter { QNSPConfiguration.supportedVersions.contains($0) }
            guard let version = common.max(), version == record.version else {
                throw reject(.unsupportedVersion, "no common QNSP version",
                             .unsupportedVersion(offered: hello.versions, supported: QNSPConfiguration.supportedVersions))
            }
            guard let host = params.hostKeys.first(where: { ConstantTime.equals($0.publicKey.keyID, hello.serverKeyID) }) else {
                throw reject(.unknownHostKey, "no host key with the requested id", .unknownHostKey)
            }
            let staticSecret = try Self.wrap { () throws(QNSPCryptoError) in try host.kemKey.decapsulate(hello.encapsulation) }
            var schedule = KeySchedule(staticSharedSecret: staticSecret)
            let prefix = hello.prefix
            let payloadKey = schedule.clientHelloKey(context: KeySchedule.transcriptHash(transcript + prefix))
            let payloadBytes: [UInt8]
            do {
                payloadBytes = try AEADCipher(algorithm: .aes256GCM, key: payloadKey.key)
                    .open(nonce: payloadKey.nonce, sealed: hello.sealedPayload, additionalData: prefix)
            } catch {
                throw reject(.undecryptable, "client hello did not decrypt", .clientHelloUndecryptable)
            }
            let clientPayload = try HandshakeMessages.ClientPayload(decoding: payloadBytes)
            guard let cipher = hello.ciphers.compactMap(AEADAlgorithm.init(rawValue:)).first(where: { configuration.ciphers.contains($0) }) else {
                throw reject(.noCommonCipher, "no common cipher", .noCommonCipher)
            }
            let clientEphemeral: HybridKEM.PublicKey
            do { clientEphemeral = try HybridKEM.PublicKey(rawRepresentation: hello.ephemeralKey) } catch {
                throw .malformedHandshake("client ephemeral key: \(error)")
            }
            transcript += raw
            let chHash = KeySchedule.transcriptHash(transcript)
            let (ephemeralSecret, encapsulation) = try Self.wrap { () throws(QNSPCryptoError) in try clientEphemeral.encapsulate() }
            schedule.mixEphemeral(ephemeralSecret, clientHelloHash: chHash)
            let shKey = schedule.serverHelloKey(context: KeySchedule.transcriptHash(transcript + encapsulation))
            let sealed = try Self.wrap { () throws(QNSPCryptoError) in
                try AEADCipher(algorithm: .aes256GCM, key: shKey.key)
                    .seal(nonce: shKey.nonce, plaintext: HandshakeMessages.ServerPayload(version: version, cipher: cipher.rawValue).encoded(),
                          additionalData: encapsulation)
            }
            sendClear(.serverHello, body: HandshakeMessages.ServerHello(encapsulation: encapsulation, sealedPayload: sealed).encoded())
            let shHash = KeySchedule.transcriptHash(transcript)
            let hsSecrets = schedule.handshakeTrafficSecrets(serverHelloHash: shHash)
            schedule.deriveMaster(serverHelloHash: shHash)
            sealer = try CellSealer(algorithm: cipher, secret: hsSecrets.server, cellSize: cellSize)
            opener = try CellOpener(algorithm: cipher, secret: hsSecrets.client, cellSize: cellSize)
            let info = QNSPSessionInfo(
                role: .server, version: version, cipher: cipher, cellSize: cellSize, service: clientPayload.service,
                username: "", userKeyFingerprint: "", hostKey: host.publicKey, exporterSecret: [], firstContact: firstContact)
            phase = .serverAwaitingClientAuth(schedule: schedule, serverHelloHash: shHash, info: info)

        default:
            throw reject(.malformed, "unexpected \(record.type)", .unexpectedMessage("clear record \(record.type) in server state \(phaseName)"))
        }
    }

    func serverHandleEncryptedHandshake(
        _ type: HandshakeMessages.EncryptedType, body: [UInt8], raw: [UInt8], params: ServerParameters, events: inout [QNSPEvent]
    ) throws(QNSPError) {
        guard case .serverAwaitingClientAuth(var schedule, let shHash, var info) = phase, type == .clientAuth else {
            throw .unexpectedMessage("encrypted handshake message \(type) in server state \(phaseName)")
        }
        let auth = try HandshakeMessages.ClientAuth(decoding: body)
        let userKey: UserPublicKey
        do { userKey = try UserPublicKey(blob: auth.publicKey) } catch {
            _ = try sendEncryptedHandshake(.authResult, body: HandshakeMessages.AuthResult(accepted: false, message: "malformed user key").encoded())
            throw .malformedHandshake("user key: \(error)")
        }
        guard userKey.signing.isValidSignature(auth.signature, for: shHash + auth.signedPart, context: KeySchedule.clientAuthContext) else {
            _ = try sendEncryptedHandshake(.authResult, body: HandshakeMessages.AuthResult(accepted: false, message: "signature invalid").encoded())
            throw .userSignatureInvalid
        }
        if case .reject(let why) = params.authorize(auth.username, userKey) {
            _ = try sendEncryptedHandshake(.authResult, body: HandshakeMessages.AuthResult(accepted: false, message: why).encoded())
            throw .userNotAuthorized(why)
        }
        transcript += raw
        let app = schedule.applicationSecrets(clientAuthHash: KeySchedule.transcriptHash(transcript))
        schedule.wipe()
        transcript.removeAll()
        opener = try CellOpener(algorithm: info.cipher, secret: app.client, cellSize: cellSize)
        _ = try sendEncryptedHandshake(.authResult, body: HandshakeMessages.AuthResult(accepted: true, message: "").encoded())
        sealer = try CellSealer(algorithm: info.cipher, secret: app.server, cellSize: cellSize)
        info.username = auth.username
        info.userKeyFingerprint = userKey.fingerprint
        info.exporterSecret = app.exporter
        sessionInfo = info
        phase = .established
        events.append(.established(info))
    }
}
