/// Message numbers of the SSH agent protocol (draft-ietf-sshm-ssh-agent, as OpenSSH speaks it).
public struct AgentMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    // Replies.
    public static let failure = AgentMessageType(rawValue: 5)
    public static let success = AgentMessageType(rawValue: 6)
    public static let identitiesAnswer = AgentMessageType(rawValue: 12)
    public static let signResponse = AgentMessageType(rawValue: 14)

    // Requests.
    public static let requestIdentities = AgentMessageType(rawValue: 11)
    public static let signRequest = AgentMessageType(rawValue: 13)
    public static let addIdentity = AgentMessageType(rawValue: 17)
    public static let removeIdentity = AgentMessageType(rawValue: 18)
    public static let removeAllIdentities = AgentMessageType(rawValue: 19)
    public static let lock = AgentMessageType(rawValue: 22)
    public static let unlock = AgentMessageType(rawValue: 23)
    public static let addIdConstrained = AgentMessageType(rawValue: 25)

    public var description: String { "\(rawValue)" }
}

/// Constraint identifiers of SSH_AGENTC_ADD_ID_CONSTRAINED.
public enum AgentConstraintType {
    public static let lifetime: UInt8 = 1
    public static let confirm: UInt8 = 2
}
