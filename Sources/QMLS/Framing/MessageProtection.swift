// MARK: - Message protection (RFC 9420 §6)

/// Signing, membership tags, and PrivateMessage encryption of AuthenticatedContent.
enum MessageProtection {
    // MARK: Signatures

    static func sign(
        _ provider: CipherSuiteProvider,
        key: SignaturePrivateKey,
        wireFormat: WireFormat,
        content: FramedContent,
        context: GroupContext?
    ) throws(MLSError) -> [UInt8] {
        let tbs = AuthenticatedContent.toBeSigned(wireFormat: wireFormat, content: content, context: context)
        do {
            return try provider.signWithLabel(key, label: "FramedContentTBS", content: tbs)
        } catch {
            throw .crypto(error)
        }
    }

    static func verify(
        _ provider: CipherSuiteProvider,
        publicKey: [UInt8],
        authenticated: AuthenticatedContent,
        context: GroupContext?
    ) -> Bool {
        let tbs = AuthenticatedContent.toBeSigned(
            wireFormat: authenticated.wireFormat,
            content: authenticated.content,
            context: context
        )
        return provider.verifyWithLabel(
            publicKey: publicKey,
            label: "FramedContentTBS",
            content: tbs,
            signature: authenticated.auth.signature
        )
    }

    // MARK: Membership tag

    /// `MAC(membership_key, AuthenticatedContentTBM)`.
    static func membershipTag(
        _ provider: CipherSuiteProvider,
        membershipKey: [UInt8],
        content: FramedContent,
        auth: FramedContentAuthData,
        context: GroupContext
    ) -> [UInt8] {
        var writer = MLSWriter(capacity: 512)
        writer.writeRaw(AuthenticatedContent.toBeSigned(wireFormat: .publicMessage, content: content, context: context))
        auth.encode(to: &writer)
        return provider.mac(key: membershipKey, data: writer.bytes)
    }

    /// Signs content and wraps it as a PublicMessage; application data is refused (RFC 9420 §6).
    static func makePublicMessage(
        _ provider: CipherSuiteProvider,
        content: FramedContent,
        signingKey: SignaturePrivateKey,
        context: GroupContext,
        membershipKey: [UInt8],
        confirmationTag: [UInt8]?
    ) throws(MLSError) -> PublicMessage {
        if case .application = content.body {
            throw .unexpectedMessage("application data must be sent as a PrivateMessage")
        }
        let signature = try sign(
            provider,
            key: signingKey,
            wireFormat: .publicMessage,
            content: content,
            context: context
        )
        let auth = FramedContentAuthData(signature: signature, confirmationTag: confirmationTag)
        var tag: [UInt8]?
        if case .member = content.sender {
            tag = membershipTag(provider, membershipKey: membershipKey, content: content, auth: auth, context: context)
        }
        return PublicMessage(content: content, auth: auth, membershipTag: tag)
    }

    // MARK: PrivateMessage

    private static func contentAAD(_ groupID: [UInt8], _ epoch: UInt64, _ type: ContentType, _ data: [UInt8]) -> [UInt8]
    {
        var writer = MLSWriter(capacity: groupID.count + data.count + 16)
        writer.writeOpaque(groupID)
        writer.writeUInt64(epoch)
        writer.write(type)
        writer.writeOpaque(data)
        return writer.bytes
    }

    private static func senderDataAAD(_ groupID: [UInt8], _ epoch: UInt64, _ type: ContentType) -> [UInt8] {
        var writer = MLSWriter(capacity: groupID.count + 16)
        writer.writeOpaque(groupID)
        writer.writeUInt64(epoch)
        writer.write(type)
        return writer.bytes
    }

    static func senderDataKeyAndNonce(
        _ provider: CipherSuiteProvider,
        senderDataSecret: [UInt8],
        ciphertext: [UInt8]
    ) -> KeyAndNonce {
        let sample = Array(ciphertext.prefix(provider.hashLength))
        return KeyAndNonce(
            key: provider.expandWithLabel(
                secret: senderDataSecret,
                label: "key",
                context: sample,
                length: provider.aeadKeyLength
            ),
            nonce: provider.expandWithLabel(
                secret: senderDataSecret,
                label: "nonce",
                context: sample,
                length: provider.aeadNonceLength
            )
        )
    }

    private static func guarded(_ nonce: [UInt8], _ reuseGuard: [UInt8]) -> [UInt8] {
        var out = nonce
        for i in 0..<4 {
            out[i] ^= reuseGuard[i]
        }
        return out
    }

    /// Encrypts member content with the sender's next ratchet key.
    static func encrypt(
        _ provider: CipherSuiteProvider,
        content: FramedContent,
        auth: FramedContentAuthData,
        senderDataSecret: [UInt8],
        secretTree: inout SecretTree,
        paddingLength: Int
    ) throws(MLSError) -> PrivateMessage {
        guard case .member(let leaf) = content.sender else {
            preconditionFailure("only members send PrivateMessages")
        }
        let kind: RatchetKind = content.contentType == .application ? .application : .handshake
        let (generation, keys) = try secretTree.nextSendingKey(leaf: leaf, kind: kind, provider)
        var plaintext = MLSWriter(capacity: 256 + paddingLength)
        content.body.encode(to: &plaintext)
        auth.encode(to: &plaintext)
        plaintext.writeRaw([UInt8](repeating: 0, count: paddingLength))
        let reuseGuard = provider.randomBytes(4)
        let aad = contentAAD(content.groupID, content.epoch, content.contentType, content.authenticatedData)
        let ciphertext: [UInt8]
        let encryptedSenderData: [UInt8]
        do {
            ciphertext = try provider.seal(
                key: keys.key,
                nonce: guarded(keys.nonce, reuseGuard),
                aad: aad,
                plaintext: plaintext.bytes
            )
            let senderKeys = senderDataKeyAndNonce(provider, senderDataSecret: senderDataSecret, ciphertext: ciphertext)
            let senderData = SenderData(leafIndex: leaf, generation: generation, reuseGuard: reuseGuard)
            encryptedSenderData = try provider.seal(
                key: senderKeys.key,
                nonce: senderKeys.nonce,
                aad: senderDataAAD(content.groupID, content.epoch, content.contentType),
                plaintext: senderData.mlsEncoded
            )
        } catch {
            throw .crypto(error)
        }
        return PrivateMessage(
            groupID: content.groupID,
            epoch: content.epoch,
            contentType: content.contentType,
            authenticatedData: content.authenticatedData,
            encryptedSenderData: encryptedSenderData,
            ciphertext: ciphertext
        )
    }

    /// Decrypts sender data and content; the returned step must be applied to the secret tree
    /// only after the content has been authenticated.
    static func decrypt(
        _ provider: CipherSuiteProvider,
        message: PrivateMessage,
        senderDataSecret: [UInt8],
        secretTree: SecretTree,
        limits: RatchetLimits,
        isMember: (LeafIndex) -> Bool
    ) throws(MLSError) -> (content: FramedContent, auth: FramedContentAuthData, step: SecretTree.Step) {
        let senderKeys = senderDataKeyAndNonce(
            provider,
            senderDataSecret: senderDataSecret,
            ciphertext: message.ciphertext
        )
        let senderData: SenderData
        do {
            let plain = try provider.open(
                key: senderKeys.key,
                nonce: senderKeys.nonce,
                aad: senderDataAAD(message.groupID, message.epoch, message.contentType),
                ciphertext: message.encryptedSenderData
            )
            senderData = try SenderData(mlsDecoding: plain)
        } catch let error as MLSCryptoError {
            throw .decryptionFailed("sender data: \(error)")
        } catch {
            throw .decryptionFailed("sender data does not decode")
        }
        guard isMember(senderData.leafIndex) else {
            throw .invalidSender("sender data names \(senderData.leafIndex), which is blank")
        }
        let kind: RatchetKind = message.contentType == .application ? .application : .handshake
        let step = try secretTree.prepare(
            leaf: senderData.leafIndex,
            kind: kind,
            generation: senderData.generation,
            limits: limits,
            provider
        )
        let plaintext: [UInt8]
        do {
            plaintext = try provider.open(
                key: step.keys.key,
                nonce: guarded(step.keys.nonce, senderData.reuseGuard),
                aad: contentAAD(message.groupID, message.epoch, message.contentType, message.authenticatedData),
                ciphertext: message.ciphertext
            )
        } catch {
            throw .decryptionFailed("content does not decrypt")
        }
        var reader = MLSReader(plaintext)
        let body: FramedContent.Body
        let auth: FramedContentAuthData
        do throws(MLSCodecError) {
            switch message.contentType {
            case .application:
                body = .application(try reader.readOpaque())
            case .proposal:
                body = .proposal(try reader.read())
            case .commit:
                body = .commit(try reader.read())
            }
            auth = try FramedContentAuthData(from: &reader, contentType: message.contentType)
            let padding = try reader.readBytes(reader.remaining)
            guard padding.allSatisfy({ $0 == 0 }) else {
                throw MLSCodecError.invalidValue("non-zero padding")
            }
        } catch {
            throw .codec(error)
        }
        let content = FramedContent(
            groupID: message.groupID,
            epoch: message.epoch,
            sender: .member(senderData.leafIndex),
            authenticatedData: message.authenticatedData,
            body: body
        )
        return (content, auth, step)
    }
}
