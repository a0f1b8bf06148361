import CQSSHPosix
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real terminal for tests: one tmux session on a private socket, driven with send-keys and
/// read with capture-pane. tmux runs through posix_spawn with its output in a file (the tmux
/// server daemonizes and could keep a pipe open). Shared by the tool and messenger tests.
public struct TmuxPane: Sendable {
    public static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") }
    public let socket: String
    /// A directory for tmux's captured output (the test's temp dir).
    public let scratch: String

    public init(socket: String, scratch: String) {
        self.socket = socket
        self.scratch = scratch
    }

    /// What went wrong driving the terminal (tmux did not start, or the pane never showed a text).
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs `tmux -L socket args`; its stdout, or nil when it failed.
    @discardableResult
    public func run(_ args: [String]) -> String? {
        let outPath = scratch + "/tmux-out-\(UUID().uuidString)"
        defer { unlink(outPath) }
        let argv = (["/usr/bin/tmux", "-L", socket] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // The tmux server outlives this call: it must not keep other tests' pipes open (a test
        // reading a child's output to its end would wait for the tmux server forever).
        _ = qssh_spawn_file_actions_addclosefrom(&actions, 3)
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/usr/bin/tmux", &actions, nil, argv, environ) == 0 else { return nil }
        var status: CInt = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { return nil }
        return (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    }

    public func start(width: Int, height: Int, command: String) throws {
        guard run(["new-session", "-d", "-s", "t", "-x", "\(width)", "-y", "\(height)", command]) != nil else {
            throw Failure(description: "tmux did not start")
        }
    }
    /// Types `keys` literally (no key-name lookup), then Enter when asked.
    public func type(_ keys: String, enter: Bool) {
        run(["send-keys", "-t", "t", "-l", keys])
        if enter { run(["send-keys", "-t", "t", "Enter"]) }
    }
    public func resize(width: Int, height: Int) { run(["resize-window", "-t", "t", "-x", "\(width)", "-y", "\(height)"]) }
    public func key(_ name: String) { run(["send-keys", "-t", "t", name]) }
    public func pane() -> String { run(["capture-pane", "-p", "-t", "t"]) ?? "" }
    /// Stops the tmux server: `kill-server`, then a signal to its pid (seen here: a server that
    /// answered `kill-server` with 0 and went on running).
    public func kill() {
        let pid = run(["display-message", "-p", "#{pid}"]).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        run(["kill-server"])
        #if canImport(Glibc)
        if let pid, pid > 1 { _ = Glibc.kill(pid, SIGKILL) }
        #else
        if let pid, pid > 1 { _ = Darwin.kill(pid, SIGKILL) }
        #endif
    }

    /// Polls the pane (every 50 ms, at most `seconds`) until it shows `text`, after the last
    /// occurrence of `after` when given.
    public func waitFor(_ text: String, after: String? = nil, seconds: Double = 30) async throws {
        try await waitUntil("'\(text)'", seconds: seconds) { Self.shows($0, text, after: after) }
    }

    /// Polls the pane (every 50 ms, at most `seconds`) until `condition` holds for its text.
    public func waitUntil(_ what: String, seconds: Double = 30, _ condition: (String) -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(pane()) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Failure(description: "the terminal never showed \(what); it shows:\n\(pane())")
    }

    /// The same wait for synchronous tests (which block their thread, not the concurrency pool).
    public func waitFor(_ text: String, after: String? = nil, attempts: Int = 300) throws {
        for _ in 0..<attempts {
            if Self.shows(pane(), text, after: after) { return }
            usleep(50_000)
        }
        throw Failure(description: "the terminal never showed '\(text)'; it shows:\n\(pane())")
    }

    /// Whether `screen` shows `text` (after the last occurrence of `after`, when given).
    static func shows(_ screen: String, _ text: String, after: String?) -> Bool {
        guard let after else { return screen.contains(text) }
        guard let mark = screen.range(of: after, options: .backwards) else { return false }
        return screen[mark.upperBound...].contains(text)
    }
}
