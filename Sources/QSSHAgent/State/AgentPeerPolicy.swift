/// Who may use the agent's socket: the agent's own uid, or root (who could read the keys
/// from memory anyway). A peer whose uid cannot be read is refused.
public enum AgentPeerPolicy {
    public static func allows(peerUID: UInt32?, ownUID: UInt32) -> Bool {
        guard let peerUID else { return false }
        return peerUID == ownUID || peerUID == 0
    }
}
