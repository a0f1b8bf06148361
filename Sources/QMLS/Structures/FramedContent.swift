// MARK: - Framed content

/// The body of a handshake or application message before protection (RFC 9420 §6).
public struct FramedContent: Hashable, Sendable, MLSCodable {
    /// What the message carries.
    public enum Body: Hashable, Sendable {
        case application([UInt8])
        case proposal(Proposal)
        case commit(Commit)

        public var contentType: ContentType {
            switch self {
            case .application:
                return .application
            case .proposal:
                return .proposal
            case .commit:
                return .commit
            }
        }

        func encode(to writer: inout MLSWriter) {
            switch self {
            case .application(let data):
                writer.writeOpaque(data)
            case .proposal(let proposal):
                writer.write(proposal)
            case .commit(let commit):
                writer.write(commit)
            }
        }

        init(contentType: ContentType, from reader: inout MLSReader) throws(MLSCodecError) {
            switch contentType {
            case .application:
                self = .application(try reader.readOpaque())
            case .proposal:
                self = .proposal(try reader.read())
            case .commit:
                self = .commit(try reader.read())
            }
        }
    }

    public var groupID: [UInt8]
    public var epoch: UInt64
    public var sender: Sender
    public var authenticatedData: [UInt8]
    public var body: Body

    public init(groupID: [UInt8], epoch: UInt64, sender: Sender, authenticatedData: [UInt8], body: Body) {
        self.groupID = groupID
        self.epoch = epoch
        self.sender = sender
        self.authenticatedData = authenticatedData
        self.body = body
    }

    public var contentType: ContentType {
        body.contentType
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeOpaque(groupID)
        writer.writeUInt64(epoch)
        writer.write(sender)
        writer.writeOpaque(authenticatedData)
        writer.write(body.contentType)
        body.encode(to: &writer)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        groupID = try reader.readOpaque()
        epoch = try reader.readUInt64()
        sender = try reader.read()
        authenticatedData = try reader.readOpaque()
        let type: ContentType = try reader.read()
        body = try Body(contentType: type, from: &reader)
    }
}

/// The signature and, for commits, the confirmation tag of a message (RFC 9420 §6.1).
public struct FramedContentAuthData: Hashable, Sendable {
    public var signature: [UInt8]
    /// Present exactly when the content is a commit.
    public var confirmationTag: [UInt8]?

    public init(signature: [UInt8], confirmationTag: [UInt8]?) {
        self.signature = signature
        self.confirmationTag = confirmationTag
    }

    public func encode(to writer: inout MLSWriter) {
        writer.writeOpaque(signature)
        if let confirmationTag {
            writer.writeOpaque(confirmationTag)
        }
    }

    public init(from reader: inout MLSReader, contentType: ContentType) throws(MLSCodecError) {
        signature = try reader.readOpaque()
        confirmationTag = contentType == .commit ? try reader.readOpaque() : nil
    }
}

/// A FramedContent with its wire format and authentication data (RFC 9420 §6).
public struct AuthenticatedContent: Hashable, Sendable, MLSCodable {
    public var wireFormat: WireFormat
    public var content: FramedContent
    public var auth: FramedContentAuthData

    public init(wireFormat: WireFormat, content: FramedContent, auth: FramedContentAuthData) {
        self.wireFormat = wireFormat
        self.content = content
        self.auth = auth
    }

    public func encode(to writer: inout MLSWriter) {
        writer.write(wireFormat)
        writer.write(content)
        auth.encode(to: &writer)
    }

    public init(from reader: inout MLSReader) throws(MLSCodecError) {
        wireFormat = try reader.read()
        content = try reader.read()
        auth = try FramedContentAuthData(from: &reader, contentType: content.contentType)
    }

    /// `FramedContentTBS`: what the sender signs. `context` is required for member and
    /// new-member-commit senders.
    public static func toBeSigned(
        wireFormat: WireFormat,
        content: FramedContent,
        context: GroupContext?
    ) -> [UInt8] {
        var writer = MLSWriter(capacity: 256)
        writer.write(ProtocolVersion.mls10)
        writer.write(wireFormat)
        writer.write(content)
        switch content.sender {
        case .member, .newMemberCommit:
            if let context {
                writer.write(context)
            }
        case .external, .newMemberProposal:
            break
        }
        return writer.bytes
    }

    /// `ConfirmedTranscriptHashInput` for a commit.
    public var confirmedTranscriptHashInput: [UInt8] {
        var writer = MLSWriter(capacity: 256)
        writer.write(wireFormat)
        writer.write(content)
        writer.writeOpaque(auth.signature)
        return writer.bytes
    }
}
