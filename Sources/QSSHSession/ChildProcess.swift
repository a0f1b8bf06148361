import CQSSHPosix
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process started with posix_spawn, its stdin/stdout/stderr on pipes.
/// (Foundation's Process is not used: on Linux its monitor thread can block on one child and never reap others.)
public struct ChildProcess: Sendable {
    public let pid: pid_t
    /// Our ends: write to `stdin`, read `stdout` and `stderr`.
    public let stdin: CInt
    public let stdout: CInt
    public let stderr: CInt

    /// Errors starting a process.
    public struct SpawnError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The account a child runs as when the server is root.
    public struct Credentials: Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
        public var groups: [UInt32]
        /// The group a terminal started for this account belongs to (the `tty` group; nil: the account's own, mode 0600).
        public var terminalGroup: UInt32?
        /// Resource limits set in the child before it drops privileges (a PAM session's pam_limits).
        public var limits: [ResourceLimit] = []
        public init(uid: UInt32, gid: UInt32, groups: [UInt32], terminalGroup: UInt32? = nil) {
            self.uid = uid
            self.gid = gid
            self.groups = groups
            self.terminalGroup = terminalGroup
        }
    }

    /// The absolute path of the running executable (to start another copy of this tool).
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? Bundle.main.executablePath ?? CommandLine.arguments[0]
    }

    /// Starts `argv[0]` (an absolute path) with `environment` and working directory `directory`;
    /// with `credentials`, as that account (fork, setgroups/setgid/setuid, exec — no exec if a step fails).
    public static func spawn(
        _ argv: [String], environment: [String: String], directory: String?, as credentials: Credentials?
    ) throws -> ChildProcess {
        guard let credentials else { return try spawn(argv, environment: environment, directory: directory) }
        let (inPipe, outPipe, errPipe) = try stdioPipes()
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        let limits = ResourceLimit.flattened(credentials.limits)
        let pid = credentials.groups.withUnsafeBufferPointer { groups in
            limits.withUnsafeBufferPointer { limits in
                qssh_spawn_as(argv[0], cArgs, cEnv, directory, inPipe[0], outPipe[1], errPipe[1],
                              credentials.uid, credentials.gid, groups.baseAddress, CInt(groups.count),
                              limits.baseAddress, CInt(limits.count / 3))
            }
        }
        close(inPipe[0]); close(outPipe[1]); close(errPipe[1])
        guard pid > 0 else {
            close(inPipe[1]); close(outPipe[0]); close(errPipe[0])
            throw SpawnError(description: "fork: \(String(cString: strerror(errno)))")
        }
        return ChildProcess(pid: pid, stdin: inPipe[1], stdout: outPipe[0], stderr: errPipe[0])
    }

    /// Starts `argv[0]` (an absolute path) with `environment` and working directory `directory`.
    /// - Parameters:
    ///   - inheritStderr: the child writes to this process's stderr (`stderr` is then -1).
    ///   - newSession: the child leads a session of its own (no controlling terminal); a proxy
    ///     command that may prompt on /dev/tty keeps ours.
    public static func spawn(
        _ argv: [String], environment: [String: String], directory: String?, inheritStderr: Bool = false, newSession: Bool = true
    ) throws -> ChildProcess {
        var (inPipe, outPipe, errPipe) = try stdioPipes()
        if inheritStderr {
            close(errPipe[0]); close(errPipe[1])
            errPipe = [-1, 2]
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        if !inheritStderr { posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2) }
        // Nothing above stderr reaches the child: not the server's sockets, not other sessions' pipes.
        guard qssh_spawn_file_actions_addclosefrom(&actions, 3) == 0 else {
            for fd in inPipe + outPipe + errPipe where fd > 2 { close(fd) }
            throw SpawnError(description: "posix_spawn_file_actions_addclosefrom: \(String(cString: strerror(errno)))")
        }
        if let directory { _ = qssh_spawn_file_actions_addchdir(&actions, directory) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        let setsid = newSession ? qssh_spawn_setsid_flag() : 0
        var flags = Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | setsid
        if setsid == 0 && newSession {
            posix_spawnattr_setpgroup(&attr, 0)
            flags |= Int16(POSIX_SPAWN_SETPGROUP)
        }
        posix_spawnattr_setflags(&attr, flags)
        let (pid, rc) = posixSpawn(argv, environment, &actions, &attr)
        close(inPipe[0]); close(outPipe[1])
        if !inheritStderr { close(errPipe[1]) }
        guard rc == 0 else {
            close(inPipe[1]); close(outPipe[0])
            if !inheritStderr { close(errPipe[0]) }
            throw SpawnError(description: "\(argv[0]): \(String(cString: strerror(rc)))")
        }
        return ChildProcess(pid: pid, stdin: inPipe[1], stdout: outPipe[0], stderr: errPipe[0])
    }

    /// Starts `argv[0]` detached for a tool going to the background (`qssh -f`): stdin from
    /// /dev/null, stdout and stderr shared with this process, `notify` as the child's fd 3 (the
    /// child reports readiness there), in a session of its own. Returns the child's pid.
    public static func spawnDetached(_ argv: [String], environment: [String: String], notify: CInt) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, notify, 3)
        guard qssh_spawn_file_actions_addclosefrom(&actions, 4) == 0 else {
            throw SpawnError(description: "posix_spawn_file_actions_addclosefrom: \(String(cString: strerror(errno)))")
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK) | qssh_spawn_setsid_flag())
        let (pid, rc) = posixSpawn(argv, environment, &actions, &attr)
        guard rc == 0 else { throw SpawnError(description: "\(argv[0]): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// posix_spawn with argv and the environment as C strings (freed afterwards); returns pid and result.
    private static func posixSpawn(
        _ argv: [String], _ environment: [String: String], _ actions: inout posix_spawn_file_actions_t, _ attr: inout posix_spawnattr_t
    ) -> (pid_t, Int32) {
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attr, cArgs, cEnv)
        return (pid, rc)
    }

    /// Starts `argv[0]` on a new pseudo-terminal; `stdin` and `stdout` are both the master side
    /// (separate descriptors), `stderr` is -1 (the terminal merges it).
    public static func spawnOnTerminal(
        _ argv: [String], environment: [String: String], directory: String?, rows: Int, columns: Int, as credentials: Credentials? = nil
    ) throws -> ChildProcess {
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var master: CInt = -1
        let r = UInt16(clamping: rows > 0 ? rows : 24), c = UInt16(clamping: columns > 0 ? columns : 80)
        let pid: CInt
        if let credentials {
            let limits = ResourceLimit.flattened(credentials.limits)
            pid = credentials.groups.withUnsafeBufferPointer { groups in
                limits.withUnsafeBufferPointer { limits in
                    qssh_forkpty_exec_as(&master, argv[0], cArgs, cEnv, directory, r, c,
                                         credentials.uid, credentials.gid, groups.baseAddress, CInt(groups.count),
                                         credentials.terminalGroup.map { CInt(bitPattern: $0) } ?? -1,
                                         limits.baseAddress, CInt(limits.count / 3))
                }
            }
        } else {
            pid = qssh_forkpty_exec(&master, argv[0], cArgs, cEnv, directory, r, c)
        }
        guard pid > 0 else { throw SpawnError(description: "forkpty: \(String(cString: strerror(errno)))") }
        let second = fcntl(master, F_DUPFD_CLOEXEC, 0)
        guard second >= 0 else {
            close(master)
            kill(pid, SIGKILL)
            throw SpawnError(description: "dup: \(String(cString: strerror(errno)))")
        }
        return ChildProcess(pid: pid, stdin: second, stdout: master, stderr: -1)
    }

    /// Resizes the terminal of a process started with `spawnOnTerminal`.
    public func setWindowSize(rows: Int, columns: Int) {
        _ = qssh_set_winsize(stdout, UInt16(clamping: rows), UInt16(clamping: columns))
    }

    /// Three close-on-exec pipes for a child's stdin, stdout and stderr: a process spawned for
    /// another session must not inherit this session's pipe ends (it would hold a stdin open
    /// and the command would never see EOF).
    private static func stdioPipes() throws -> ([CInt], [CInt], [CInt]) {
        var inPipe: [CInt] = [0, 0], outPipe: [CInt] = [0, 0], errPipe: [CInt] = [0, 0]
        guard cloexecPipe(&inPipe) else { throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))") }
        guard cloexecPipe(&outPipe) else {
            close(inPipe[0]); close(inPipe[1])
            throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))")
        }
        guard cloexecPipe(&errPipe) else {
            for fd in inPipe + outPipe { close(fd) }
            throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))")
        }
        return (inPipe, outPipe, errPipe)
    }

    private static func cloexecPipe(_ fds: inout [CInt]) -> Bool {
        fds.withUnsafeMutableBufferPointer { qssh_pipe_cloexec($0.baseAddress) == 0 }
    }

    /// How a process ended.
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32, coreDumped: Bool)
    }

    /// Blocks until the process ends (call on a thread of its own).
    public func waitForExit() -> Termination {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return .exited(255) }
        }
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(signal, coreDumped: status & 0x80 != 0)
    }

    /// Sends `signal` to the process group the child leads.
    public func signalGroup(_ signal: Int32) { kill(-pid, signal) }
}
