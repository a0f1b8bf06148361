/// Limits a login put on its sessions (from a user certificate's options, docs/protocol.md
/// §7.7); the default restricts nothing.
public struct SessionRestrictions: Sendable, Equatable {
    /// Run this command (with the shell, `SSH_ORIGINAL_COMMAND` set to what the client asked)
    /// for every exec, shell and subsystem request.
    public var forcedCommand: String?
    /// Refuse pty-req.
    public var noPTY = false
    /// Refuse direct-tcpip channels and tcpip-forward requests.
    public var noPortForwarding = false
    /// Refuse agent forwarding (docs/protocol.md §7.9).
    public var noAgentForwarding = false

    public init(forcedCommand: String? = nil, noPTY: Bool = false, noPortForwarding: Bool = false, noAgentForwarding: Bool = false) {
        self.forcedCommand = forcedCommand
        self.noPTY = noPTY
        self.noPortForwarding = noPortForwarding
        self.noAgentForwarding = noAgentForwarding
    }
}
