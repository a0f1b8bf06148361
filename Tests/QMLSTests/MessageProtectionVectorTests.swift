import Testing

@testable import QMLS

/// message-protection.json: PublicMessage and PrivateMessage protection of a proposal, a commit
/// and application data, both verifying the given messages and protecting our own.
@Suite("MLS vectors: message protection")
struct MessageProtectionVectorTests {
    struct Context {
        let provider: CipherSuiteProvider
        let groupContext: GroupContext
        let signatureKey: SignaturePrivateKey
        let signaturePub: [UInt8]
        let encryptionSecret: [UInt8]
        let senderDataSecret: [UInt8]
        let membershipKey: [UInt8]
    }

    @Test("message-protection.json: verify and produce public and private messages")
    func messageProtection() throws {
        var tally = VectorTally("message-protection.json")
        for vector in try TestVectors.load("message-protection.json") {
            let suite = vector.suite
            guard let provider = try? CipherSuiteProvider(suite) else {
                tally.skip(suite: suite.rawValue)
                continue
            }
            let check = CaseCheck("suite \(suite.rawValue)")
            check.run("protection") {
                let ctx = Context(
                    provider: provider,
                    groupContext: GroupContext(
                        cipherSuite: suite,
                        groupID: try vector.hex("group_id"),
                        epoch: UInt64(try vector.int("epoch")),
                        treeHash: try vector.hex("tree_hash"),
                        confirmedTranscriptHash: try vector.hex("confirmed_transcript_hash"),
                        extensions: []
                    ),
                    signatureKey: try provider.signaturePrivateKey(try vector.hex("signature_priv")),
                    signaturePub: try vector.hex("signature_pub"),
                    encryptionSecret: try vector.hex("encryption_secret"),
                    senderDataSecret: try vector.hex("sender_data_secret"),
                    membershipKey: try vector.hex("membership_key")
                )
                let proposal = FramedContent.Body.proposal(try Proposal(mlsDecoding: try vector.hex("proposal")))
                let commit = FramedContent.Body.commit(try Commit(mlsDecoding: try vector.hex("commit")))
                let application = FramedContent.Body.application(try vector.hex("application"))
                for (name, body) in [("proposal", proposal), ("commit", commit)] {
                    let pub = try MLSMessage(mlsDecoding: try vector.hex("\(name)_pub"))
                    check.expect(try Self.verifyPublic(pub, ctx) == body, "\(name)_pub verifies")
                    let ours = try Self.protectPublic(body, ctx)
                    check.expect(try Self.verifyPublic(ours, ctx) == body, "our \(name) PublicMessage verifies")
                }
                for (name, body) in [("proposal", proposal), ("commit", commit), ("application", application)] {
                    let priv = try MLSMessage(mlsDecoding: try vector.hex("\(name)_priv"))
                    check.expect(try Self.unprotectPrivate(priv, ctx) == body, "\(name)_priv unprotects")
                    let ours = try Self.protectPrivate(body, ctx)
                    check.expect(try Self.unprotectPrivate(ours, ctx) == body, "our \(name) PrivateMessage unprotects")
                }
                var refused = false
                do {
                    _ = try MessageProtection.makePublicMessage(
                        provider,
                        content: Self.content(application, ctx),
                        signingKey: ctx.signatureKey,
                        context: ctx.groupContext,
                        membershipKey: ctx.membershipKey,
                        confirmationTag: nil
                    )
                } catch {
                    refused = true
                }
                check.expect(refused, "application data as PublicMessage is refused")
            }
            tally.record(check)
        }
        tally.report()
    }

    static func content(_ body: FramedContent.Body, _ ctx: Context) -> FramedContent {
        FramedContent(
            groupID: ctx.groupContext.groupID,
            epoch: ctx.groupContext.epoch,
            sender: .member(LeafIndex(1)),
            authenticatedData: [],
            body: body
        )
    }

    static func confirmationTag(_ body: FramedContent.Body, _ ctx: Context) -> [UInt8]? {
        if case .commit = body {
            return [UInt8](repeating: 0x11, count: ctx.provider.hashLength)
        }
        return nil
    }

    static func protectPublic(_ body: FramedContent.Body, _ ctx: Context) throws -> MLSMessage {
        let message = try MessageProtection.makePublicMessage(
            ctx.provider,
            content: content(body, ctx),
            signingKey: ctx.signatureKey,
            context: ctx.groupContext,
            membershipKey: ctx.membershipKey,
            confirmationTag: confirmationTag(body, ctx)
        )
        return MLSMessage(body: .publicMessage(message))
    }

    static func verifyPublic(_ message: MLSMessage, _ ctx: Context) throws -> FramedContent.Body? {
        guard case .publicMessage(let pub) = message.body, let tag = pub.membershipTag else {
            return nil
        }
        let expected = MessageProtection.membershipTag(
            ctx.provider,
            membershipKey: ctx.membershipKey,
            content: pub.content,
            auth: pub.auth,
            context: ctx.groupContext
        )
        guard expected == tag else {
            return nil
        }
        let authenticated = AuthenticatedContent(wireFormat: .publicMessage, content: pub.content, auth: pub.auth)
        guard
            MessageProtection.verify(
                ctx.provider,
                publicKey: ctx.signaturePub,
                authenticated: authenticated,
                context: ctx.groupContext
            )
        else {
            return nil
        }
        return pub.content.body
    }

    static func protectPrivate(_ body: FramedContent.Body, _ ctx: Context) throws -> MLSMessage {
        var tree = SecretTree(encryptionSecret: ctx.encryptionSecret, leafCount: 2)
        let framed = content(body, ctx)
        let signature = try MessageProtection.sign(
            ctx.provider,
            key: ctx.signatureKey,
            wireFormat: .privateMessage,
            content: framed,
            context: ctx.groupContext
        )
        let auth = FramedContentAuthData(signature: signature, confirmationTag: confirmationTag(body, ctx))
        let message = try MessageProtection.encrypt(
            ctx.provider,
            content: framed,
            auth: auth,
            senderDataSecret: ctx.senderDataSecret,
            secretTree: &tree,
            paddingLength: 7
        )
        return MLSMessage(body: .privateMessage(message))
    }

    static func unprotectPrivate(_ message: MLSMessage, _ ctx: Context) throws -> FramedContent.Body? {
        guard case .privateMessage(let priv) = message.body else {
            return nil
        }
        let tree = SecretTree(encryptionSecret: ctx.encryptionSecret, leafCount: 2)
        let opened = try MessageProtection.decrypt(
            ctx.provider,
            message: priv,
            senderDataSecret: ctx.senderDataSecret,
            secretTree: tree,
            limits: RatchetLimits(),
            isMember: { $0 == LeafIndex(1) }
        )
        let authenticated = AuthenticatedContent(
            wireFormat: .privateMessage,
            content: opened.content,
            auth: opened.auth
        )
        guard
            MessageProtection.verify(
                ctx.provider,
                publicKey: ctx.signaturePub,
                authenticated: authenticated,
                context: ctx.groupContext
            )
        else {
            return nil
        }
        return opened.content.body
    }
}
