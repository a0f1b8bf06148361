/// What went wrong in the agent protocol: a malformed message from a peer, a refused
/// request, or a local failure. Peers only ever see SSH_AGENT_FAILURE; the text is for logs
/// and for the `qssh-add` user.
public enum AgentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The bytes are not a well-formed agent message (`what` names the field).
    case malformed(String)
    /// A frame announced more than ``AgentFramer/maximumFrameSize`` bytes.
    case frameTooLarge(Int)
    /// The agent answered SSH_AGENT_FAILURE.
    case refused
    /// The agent sent a message we did not expect for the request.
    case unexpectedResponse(UInt8)
    /// A key type this agent does not hold.
    case unsupportedKeyType(String)
    /// The data to sign is not a login (QNSP ClientAuth or SSH userauth) with the key.
    case notLoginData(String)
    /// Talking to the agent's socket failed.
    case transport(String)
    /// Locked-memory allocation failed.
    case outOfSecureMemory

    public var description: String {
        switch self {
        case .malformed(let what): return "malformed agent message: \(what)"
        case .frameTooLarge(let n): return "agent message of \(n) bytes is over the limit"
        case .refused: return "agent refused operation"
        case .unexpectedResponse(let t): return "unexpected agent response type \(t)"
        case .unsupportedKeyType(let t): return "unsupported key type '\(t)'"
        case .notLoginData(let why): return "the data to sign is not a login with this key: \(why)"
        case .transport(let why): return "agent connection: \(why)"
        case .outOfSecureMemory: return "could not allocate memory for a key"
        }
    }
}
