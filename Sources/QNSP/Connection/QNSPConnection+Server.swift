import QNSPCrypto

// MARK: - Server handshake

extension QNSPConnection {
    /// The one refusal text a client is ever sent for a user it will not let in, whatever the
    /// reason (unknown account, key not listed, unsafe keys file, bad signature): the reason goes
    /// to the server's log only, so that refusals tell an attacker nothing about accounts.
    public static let genericRefusal = "permission denied"

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
        guard case .serverAwaitingHello(let announced, let retried) = phase else {
            throw .unexpectedMessage("clear record \(record.type) in server state \(phaseName)")
        }
        if !announced && !retried { cellSize = record.cellSize }
        guard QNSPConfiguration.supportedVersions.contains(record.version) else {
            throw reject(.unsupportedVersion, "this server speaks QNSP versions \(QNSPConfiguration.supportedVersions)",
                         .unsupportedVersion(offered: [record.version], supported: QNSPConfiguration.supportedVersions))
        }
        guard !params.hostKeys.isEmpty else { throw .keyMaterial("server has no host key") }
        switch record.type {
        case .hostKeyRequest where !announced && !retried:
            let request = try HandshakeMessages.HostKeyRequest(decoding: record.body)
            guard request.versions.contains(record.version) else { throw .malformedHandshake("host key request version list") }
            guard raw.count >= HandshakeMessages.HostKeyRequest.minimumRecordSize(cellSize: cellSize) else {
                throw reject(.malformed, "host key request too short", .malformedHandshake("host key request shorter than a third of the announcement"))
            }
            guard params.handshakeGuard.allowAnnouncement(peer: params.peerAddress) else {
                throw reject(.busy, "too many handshakes from your address, try again later", .handshakeRefused("host key request rate limit"))
            }
            transcript += raw
            // The certificate goes only to a request that pays for it (at most 3x amplification).
            let withCertificate = params.certificateAnnouncementRecordSize(cellSize: cellSize).map { raw.count >= ($0 + 2) / 3 } ?? false
            guard let body = params.announcementBody(certificate: withCertificate) else {
                throw .keyMaterial("the host key announcement could not be signed")
            }
            sendClear(.hostKeyAnnouncement, body: body)
            firstContact = true
            phase = .serverAwaitingHello(announced: true, retried: false)

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
            // Before any KEM work: replays, rate limits and, under load, a cookie round.
            switch params.handshakeGuard.check(hello, peer: params.peerAddress, retried: retried) {
            case .proceed: break
            case .retry(let retry):
                sendClear(.retry, body: retry.encoded())
                phase = .serverAwaitingHello(announced: announced, retried: true)
                return
            case .replayed:
                throw reject(.replayed, "replayed client hello", .handshakeRefused("replayed client hello"))
            case .expiredCookie:
                throw reject(.malformed, "missing, wrong or expired cookie", .handshakeRefused("missing, wrong or expired cookie"))
            case .rateLimited:
                throw reject(.busy, "too many handshakes from your address, try again later", .handshakeRefused("per-source handshake rate limit"))
            case .overloaded:
                throw reject(.busy, "server busy, try again later", .handshakeRefused("replay filter full"))
            }
            let staticSecret = try Self.wrap { () throws(QNSPCryptoError) in try host.kemKey.decapsulate(hello.encapsulation) }
            var schedule = KeySchedule(staticSharedSecret: staticSecret)
            staticSecret.wipe()
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
            ephemeralSecret.wipe()
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
        guard case .serverAwaitingClientAuth(let schedule, let shHash, let info) = phase, type == .clientAuth else {
            throw .unexpectedMessage("encrypted handshake message \(type) in server state \(phaseName)")
        }
        let auth = try HandshakeMessages.ClientAuth(decoding: body)
        // The key field holds the bare key (1952 bytes) or a user certificate for it (§7.7).
        let userKey: UserPublicKey
        var certificate: QNSPCertificate?
        do {
            if auth.publicKey.count == SignatureScheme.publicKeySize {
                userKey = try UserPublicKey(blob: auth.publicKey)
            } else {
                let cert = try QNSPCertificate(blob: auth.publicKey)
                guard case .user(let key) = cert.subject else { throw QNSPCryptoError.certificateInvalid("a host certificate used as a user key") }
                userKey = key
                certificate = cert
            }
        } catch {
            try sendRefusal()
            throw .malformedHandshake("user key: \(error)")
        }
        guard userKey.signing.isValidSignature(auth.signature, for: shHash + auth.signedPart, context: KeySchedule.clientAuthContext) else {
            try sendRefusal()
            throw .userSignatureInvalid
        }
        // The policy (password database, keys files) may block: the driver runs it where it
        // likes and answers with `completeAuthorization`. Input waits until then.
        phase = .serverAwaitingAuthorization(
            PendingAuthorization(
                schedule: schedule, info: info, clientAuthRecord: raw, username: auth.username, userKey: userKey, certificate: certificate))
        events.append(.authorizationRequired(username: auth.username, key: userKey))
    }

    /// Answers an `.authorizationRequired` event. Accepting completes the handshake (the
    /// `.established` event is returned, with any events and data from bytes that arrived
    /// meanwhile); refusing sends the generic refusal and throws `userNotAuthorized(reason)`.
    /// After a refusal or any error, send `takeOutbound()` and close, as after every call.
    public func completeAuthorization(
        _ decision: AuthorizationDecision, deliver: (UnsafeRawBufferPointer) -> Void = { _ in }
    ) throws(QNSPError) -> [QNSPEvent] {
        if case .closed = phase { throw .connectionClosed }
        guard case .serverAwaitingAuthorization(let pending) = phase else {
            preconditionFailure("internal: completeAuthorization without a pending authorization (state \(phaseName))")
        }
        var events: [QNSPEvent] = []
        try failClosed { () throws(QNSPError) in
            if case .reject(let why) = decision {
                try sendRefusal()
                throw .userNotAuthorized(why)
            }
            var schedule = pending.schedule
            var info = pending.info
            transcript += pending.clientAuthRecord
            let app = schedule.applicationSecrets(clientAuthHash: KeySchedule.transcriptHash(transcript))
            schedule.wipe()
            transcript.removeAll()
            opener = try CellOpener(algorithm: info.cipher, secret: app.client, cellSize: cellSize)
            _ = try sendEncryptedHandshake(.authResult, body: HandshakeMessages.AuthResult(accepted: true, message: "").encoded())
            sealer = try CellSealer(algorithm: info.cipher, secret: app.server, cellSize: cellSize)
            info.username = pending.username
            info.userKeyFingerprint = pending.userKey.fingerprint
            info.exporterSecret = app.exporter
            sessionInfo = info
            phase = .established
            events.append(.established(info))
            try resumeHeldInput(deliver: deliver, events: &events)
        }
        return events
    }

    private func sendRefusal() throws(QNSPError) {
        _ = try sendEncryptedHandshake(.authResult, body: HandshakeMessages.AuthResult(accepted: false, message: Self.genericRefusal).encoded())
    }
}

/// What a server connection keeps while its driver decides whether the user may log in.
struct PendingAuthorization {
    var schedule: KeySchedule
    var info: QNSPSessionInfo
    var clientAuthRecord: [UInt8]
    var username: String
    var userKey: UserPublicKey
    var certificate: QNSPCertificate?
}
