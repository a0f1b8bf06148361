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
/// it when its process has ended; the connection's end and qsshd's SIGTERM do too), the socket
/// through a descriptor of the directory kept from its creation, never through a path the account
/// could have redirected.
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

    /// What ``remove(socket:in:directoryFD:)`` did.
    package enum Removal: Equatable, Sendable {
        /// Socket and directory are gone.
        case removed
        /// The path no longer names the directory made for the session (the account renamed it, maybe
        /// putting a link there): the socket was removed in the original directory, the path left as it is.
        case directoryReplaced
        /// A removal failed (the reason).
        case failed(String)
    }

    /// The socket's path (the value of `QSSH_AUTH_SOCK` in the session).
    public let path: String
    /// The directory holding it.
    public let directory: String
    /// The socket's name in ``directory`` (`agent.PID`).
    private let socketName: String
    /// The directory, opened when it was made (before it was given to the account): the socket is removed
    /// through it, never through a path the account could have redirected.
    private let directoryFD: Int32
    private let log: (@Sendable (String) -> Void)?
    private let listener: NIOLockedValueBox<Channel?>

    /// Every listener not stopped yet, by socket path (for ``stopAll()``).
    private static let live = NIOLockedValueBox<[String: AgentSocketListener]>([:])

    private init(path: String, directory: String, socketName: String, directoryFD: Int32,
                 log: (@Sendable (String) -> Void)?, listener: Channel) {
        self.path = path
        self.directory = directory
        self.socketName = socketName
        self.directoryFD = directoryFD
        self.log = log
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
        // Still root's (or ours) and 0700 here: nobody else can have put anything in its place yet.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directoryFD >= 0 else {
            let why = String(cString: strerror(errno))
            rmdir(directory)
            return loop.makeFailedFuture(SetupError.directory("open \(directory): \(why)"))
        }
        let socketName = "agent.\(getpid())"
        let path = "\(directory)/\(socketName)"
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
                // Not given away yet, so the path is still the directory made above.
                unlinkat(directoryFD, socketName, 0)
                rmdir(directory)
                close(directoryFD)
                throw SetupError.socket(path, "\(error)")
            }
            .flatMapThrowing { channel in
                let made = AgentSocketListener(path: path, directory: directory, socketName: socketName,
                                               directoryFD: directoryFD, log: log, listener: channel)
                // The directory is 0700 and ours until the chown, so nobody else reaches the socket before;
                // the socket gets its final mode and owner first, the directory last, all through the fd.
                var problem: String?
                if fchmodat(directoryFD, socketName, 0o600, 0) != 0 {
                    problem = "chmod: \(String(cString: strerror(errno)))"
                } else if user.uid != geteuid() {
                    if fchownat(directoryFD, socketName, uid_t(user.uid), gid_t(user.gid), Int32(AT_SYMLINK_NOFOLLOW)) != 0
                        || fchown(directoryFD, uid_t(user.uid), gid_t(user.gid)) != 0 {
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
    /// Connections already relayed go on until they or the SSH connection end. A directory the
    /// account has moved away (or replaced) is not followed: that is logged and left.
    public func stop() {
        guard let channel = listener.withLockedValue({ l -> Channel? in defer { l = nil }; return l }) else { return }
        switch Self.remove(socket: socketName, in: directory, directoryFD: directoryFD) {
        case .removed:
            break
        case .directoryReplaced:
            log?("agent socket directory \(directory) no longer names the one made for the session (renamed or replaced): "
                + "the socket was removed in the original, the path is left as it is")
        case .failed(let why):
            log?("cannot remove the agent socket directory \(directory): \(why)")
        }
        close(directoryFD)
        channel.close(promise: nil)
        _ = Self.live.withLockedValue { $0.removeValue(forKey: path) }
    }

    /// Removes `socket` from the directory open as `directoryFD` (whatever its path is now), then the
    /// directory, but only if `directory` still names it (same device and inode, a directory, not a link).
    /// The account owns the directory and may have renamed it and put a link or another directory of
    /// its own at `directory`; nothing is removed through that. (Between the check and `rmdir` the
    /// account could swap once more, but `rmdir` follows no final link and removes only an empty
    /// directory, one the account could remove itself.) `directoryFD` stays open.
    package static func remove(socket: String, in directory: String, directoryFD: Int32) -> Removal {
        var problem: String?
        if unlinkat(directoryFD, socket, 0) != 0 && errno != ENOENT {
            problem = "unlink \(socket): \(String(cString: strerror(errno)))"
        }
        var opened = stat()
        var named = stat()
        guard fstat(directoryFD, &opened) == 0 else {
            return .failed("fstat: \(String(cString: strerror(errno)))")
        }
        guard lstat(directory, &named) == 0 else {
            return errno == ENOENT ? .directoryReplaced : .failed("lstat: \(String(cString: strerror(errno)))")
        }
        guard named.st_mode & S_IFMT == S_IFDIR, named.st_dev == opened.st_dev, named.st_ino == opened.st_ino else {
            return .directoryReplaced
        }
        if let problem { return .failed(problem) }
        guard rmdir(directory) == 0 else { return .failed("rmdir: \(String(cString: strerror(errno)))") }
        return .removed
    }

    /// Stops every listener of this process (qsshd's SIGTERM: no socket is left behind).
    public static func stopAll() {
        for listener in live.withLockedValue({ Array($0.values) }) { listener.stop() }
    }
}
