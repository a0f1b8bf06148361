import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSH

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The server's forwarded agent socket for one session (docs/protocol.md §7.9): a Unix socket
/// `agent.PID` (mode 0600) in a new directory `qssh-XXXXXX` (mode 0700), both owned by the
/// session's account. Each connection to it opens an agent channel to the client on the SSH
/// connection and is relayed there. ``stop()`` removes socket and directory (the session calls
/// it when its process has ended; the connection's end and qsshd's SIGTERM do too).
public final class AgentSocketListener: Sendable {
    /// Errors of setting the socket up.
    public enum SetupError: Error, CustomStringConvertible {
        case directory(String)
        case socket(String, String)

        public var description: String {
            switch self {
            case .directory(let why): return "cannot create the agent socket directory: \(why)"
            case .socket(let path, let why): return "cannot set up the agent socket \(path): \(why)"
            }
        }
    }

    /// The socket's path (the value of `QSSH_AUTH_SOCK` in the session).
    public let path: String
    /// The directory holding it.
    public let directory: String
    private let listener: NIOLockedValueBox<Channel?>

    /// Every listener not stopped yet, by socket path (for ``stopAll()``).
    private static let live = NIOLockedValueBox<[String: AgentSocketListener]>([:])

    private init(path: String, directory: String, listener: Channel) {
        self.path = path
        self.directory = directory
        self.listener = NIOLockedValueBox(listener)
    }

    /// Creates the directory and the socket for `user` and listens; call on `connection`'s
    /// event loop. `connection` is the channel carrying the SSH handler.
    /// - Parameter base: where the directory is made (sshd uses /tmp too).
    public static func start(
        for user: SessionUser, connection: Channel, base: String = "/tmp", log: (@Sendable (String) -> Void)? = nil
    ) -> EventLoopFuture<AgentSocketListener> {
        let loop = connection.eventLoop
        var template = Array("\(base)/qssh-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> String? in
            guard let start = buffer.baseAddress, let dir = mkdtemp(start) else { return nil }
            return String(cString: dir)
        }
        guard let directory = made else {
            return loop.makeFailedFuture(SetupError.directory("mkdtemp in \(base): \(String(cString: strerror(errno)))"))
        }
        let path = "\(directory)/agent.\(getpid())"
        return ServerBootstrap(group: loop)
            .serverChannelOption(.backlog, value: 16)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { local in
                // Until the client accepts the channel, the local side is not read (nothing would take the bytes).
                ForwardingRelay.openChannel(on: connection, type: AgentForwarding.channelType, joining: local).map { _ in }
                    .flatMapErrorThrowing { error in
                        log?("forwarded agent connection refused by the client: \(ForwardingRelay.describe(error))")
                        throw error
                    }
            }
            .bind(unixDomainSocketPath: path)
            .flatMapErrorThrowing { error in
                rmdir(directory)
                throw SetupError.socket(path, "\(error)")
            }
            .flatMapThrowing { channel in
                let made = AgentSocketListener(path: path, directory: directory, listener: channel)
                // The directory is 0700 and ours until the chown, so nobody else reaches the socket before.
                var problem: String?
                if chmod(path, 0o600) != 0 {
                    problem = "chmod: \(String(cString: strerror(errno)))"
                } else if user.uid != geteuid() {
                    if chown(path, uid_t(user.uid), gid_t(user.gid)) != 0 || chown(directory, uid_t(user.uid), gid_t(user.gid)) != 0 {
                        problem = "chown to uid \(user.uid): \(String(cString: strerror(errno)))"
                    }
                }
                if let problem {
                    made.stop()
                    throw SetupError.socket(path, problem)
                }
                live.withLockedValue { $0[path] = made }
                connection.closeFuture.whenComplete { _ in made.stop() }
                return made
            }
    }

    /// Removes the socket and its directory and stops listening; later calls do nothing.
    /// Connections already relayed go on until they or the SSH connection end.
    public func stop() {
        guard let channel = listener.withLockedValue({ l -> Channel? in defer { l = nil }; return l }) else { return }
        unlink(path)
        rmdir(directory)
        channel.close(promise: nil)
        _ = Self.live.withLockedValue { $0.removeValue(forKey: path) }
    }

    /// Stops every listener of this process (qsshd's SIGTERM: no socket is left behind).
    public static func stopAll() {
        for listener in live.withLockedValue({ Array($0.values) }) { listener.stop() }
    }
}
