import NIOCore
import NIOSSH

/// The names agent forwarding uses inside the SSH-2 connection (docs/protocol.md §7.9).
///
/// swift-nio-ssh 0.15.1 has no `auth-agent@openssh.com` channel type and no custom channel
/// requests, so qssh carries OpenSSH's design in message types it does support: the client asks
/// with an `env` request of a reserved name on the session channel (in place of
/// `auth-agent-req@openssh.com`), and the server opens one `forwarded-tcpip` channel with a
/// reserved connected address per connection to the forwarded socket (in place of an
/// `auth-agent@openssh.com` channel). Neither name can be a real variable or host name.
public enum AgentForwarding {
    /// The `env` request name with which a client asks for its agent on the session channel.
    public static let requestName = "auth-agent-req@qssh"
    /// The connected address of a `forwarded-tcpip` channel that carries one agent connection.
    public static let channelHost = "auth-agent@qssh"
    /// The variable naming the agent socket (the one qssh, qssh-add and qsshd's sessions use).
    public static let socketVariable = "QSSH_AUTH_SOCK"

    /// The channel type the server opens for each connection to a forwarded socket.
    public static var channelType: SSHChannelType {
        .forwardedTCPIP(.init(listeningHost: channelHost, listeningPort: 0, originatorAddress: ForwardingRelay.originator(nil)))
    }

    /// True when `host` is the reserved agent address (compared as the server sends it, case-insensitively).
    public static func isReserved(host: String) -> Bool {
        host.lowercased() == channelHost
    }
}
