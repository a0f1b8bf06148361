/// An agent-to-client message.
public enum AgentResponse: Sendable, Equatable {
    case failure
    case success
    case identities([AgentIdentity])
    case signature(blob: [UInt8])

    public func encoded() -> [UInt8] {
        var w = AgentWireWriter()
        switch self {
        case .failure:
            w.write(byte: AgentMessageType.failure.rawValue)
        case .success:
            w.write(byte: AgentMessageType.success.rawValue)
        case .identities(let list):
            w.write(byte: AgentMessageType.identitiesAnswer.rawValue)
            w.write(uint32: UInt32(list.count))
            for id in list {
                w.write(string: id.keyBlob)
                w.write(text: id.comment)
            }
        case .signature(let blob):
            w.write(byte: AgentMessageType.signResponse.rawValue)
            w.write(string: blob)
        }
        return w.bytes
    }

    /// Decodes a reply frame. Types other than the four replies are `.unexpectedResponse`
    /// (OpenSSH's SSH_AGENT_EXTENSION_FAILURE and SSH_COM failure codes count as failure).
    public init(frame: [UInt8]) throws(AgentError) {
        var r = AgentWireReader(frame)
        let type = AgentMessageType(rawValue: try r.readByte("message type"))
        switch type {
        case .failure, AgentMessageType(rawValue: 28), AgentMessageType(rawValue: 30), AgentMessageType(rawValue: 102):
            self = .failure
        case .success:
            try r.expectEnd("success")
            self = .success
        case .identitiesAnswer:
            let n = try r.readUInt32("identity count")
            // Each identity takes at least 8 bytes: a count beyond that is a lie.
            guard Int(n) <= r.remaining / 8 else { throw .malformed("identity count \(n) exceeds the message") }
            var list: [AgentIdentity] = []
            for _ in 0..<n {
                let blob = try r.readString("key blob")
                let comment = try r.readText("comment")
                list.append(AgentIdentity(keyBlob: blob, comment: comment))
            }
            try r.expectEnd("identities answer")
            self = .identities(list)
        case .signResponse:
            let blob = try r.readString("signature")
            try r.expectEnd("sign response")
            self = .signature(blob: blob)
        default:
            throw .unexpectedResponse(type.rawValue)
        }
    }
}

/// One key the agent holds, as listed by SSH_AGENT_IDENTITIES_ANSWER.
public struct AgentIdentity: Sendable, Equatable {
    public var keyBlob: [UInt8]
    public var comment: String

    public init(keyBlob: [UInt8], comment: String) {
        self.keyBlob = keyBlob
        self.comment = comment
    }
}
