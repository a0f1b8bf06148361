import ArgumentParser
import CQSSHAgentPosix
import CQSSHPosix
import Foundation
import QNSPCrypto
import QSSHAgent
import QSSHSession

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `qssh-agent`: holds ML-DSA-65 user keys in memory and signs QNSP logins for qssh, qscp,
/// qsftp and qnsp, like OpenSSH's ssh-agent.
public struct AgentCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "qssh-agent",
        abstract: "Hold QNSP user keys in memory and sign logins for the qssh tools.",
        discussion: """
            Without -D the agent goes to the background and prints shell commands that set
            QSSH_AUTH_SOCK and QSSH_AGENT_PID:  eval "$(qssh-agent -s)"
            The socket (mode 0600) is created in a new 0700 directory under $TMPDIR (or /tmp)
            unless -a names it; only this uid and root may connect (checked with SO_PEERCRED).
            Keys live in locked memory where the system allows and the process cannot be
            traced or dump core. Keys are added with qssh-add.
            """
    )

    @Option(name: .customShort("a"), help: "Bind the agent to this socket path (it must not exist).")
    var socket: String?

    @Flag(name: .customShort("D"), help: "Stay in the foreground.")
    var foreground = false

    @Flag(name: .customShort("d"), help: "Debug: stay in the foreground and log refusals to stderr.")
    var debug = false

    @Flag(name: .customShort("k"), help: "Kill the agent named by QSSH_AGENT_PID.")
    var kill = false

    @Flag(name: .customShort("s"), help: "Print Bourne shell commands.")
    var bourne = false

    @Flag(name: .customShort("c"), help: "Print C shell commands.")
    var csh = false

    @Option(name: .long, help: .private)
    var internalReadyFd: Int32?

    public init() {}

    public func validate() throws {
        if bourne && csh { throw ValidationError("-s and -c are mutually exclusive") }
        if kill && (socket != nil || foreground || debug) {
            throw ValidationError("-k takes no other option than -s or -c")
        }
    }

    private var cshOutput: Bool {
        if csh { return true }
        if bourne { return false }
        return (ProcessInfo.processInfo.environment["SHELL"] ?? "").hasSuffix("csh")
    }

    public func run() throws {
        if kill { return try killAgent() }
        if foreground || debug || internalReadyFd != nil { return try runAgent() }
        try startInBackground()
    }

    // MARK: -k

    private func killAgent() throws {
        let env = ProcessInfo.processInfo.environment
        guard let text = env[AgentClient.pidVariable], let pid = Int32(text), pid > 1 else {
            throw ToolError("\(AgentClient.pidVariable) not set or not a process id, cannot kill agent")
        }
        guard sendSignal(pid, SIGTERM) == 0 else { throw ToolError("kill \(pid): \(String(cString: strerror(errno)))") }
        if cshOutput {
            print("unsetenv \(AgentClient.socketVariable);\nunsetenv \(AgentClient.pidVariable);")
        } else {
            print("unset \(AgentClient.socketVariable);\nunset \(AgentClient.pidVariable);")
        }
        print("echo Agent pid \(pid) killed;")
    }

    // MARK: Background start

    /// Starts `qssh-agent -D` detached, waits for it to report its socket on a pipe, prints
    /// the shell commands and returns.
    private func startInBackground() throws {
        var fds: [CInt] = [-1, -1]
        guard qssh_pipe_cloexec(&fds) == 0 else { throw ToolError("pipe: \(String(cString: strerror(errno)))") }
        var argv = [ChildProcess.currentExecutable, "--internal-ready-fd", "3"]
        if let socket { argv += ["-a", socket] }
        let pid: pid_t
        do {
            pid = try ChildProcess.spawnDetached(argv, environment: ProcessInfo.processInfo.environment, notify: fds[1])
        } catch {
            close(fds[0])
            close(fds[1])
            throw ToolError("starting the agent: \(error)")
        }
        close(fds[1])
        let reply = BlockingIO.readText(fds[0])
        close(fds[0])
        guard reply.hasPrefix("ok "), reply.hasSuffix("\n") else {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw ToolError(
                reply.isEmpty ? "the agent did not start" : String(reply.dropFirst(reply.hasPrefix("error ") ? 6 : 0))
            )
        }
        printShell(socket: String(reply.dropFirst(3).dropLast()), pid: pid)
    }

    private func printShell(socket: String, pid: pid_t) {
        var text: String
        if cshOutput {
            text = "setenv \(AgentClient.socketVariable) \(socket);\nsetenv \(AgentClient.pidVariable) \(pid);\n"
        } else {
            text = "\(AgentClient.socketVariable)=\(socket); export \(AgentClient.socketVariable);\n"
            text += "\(AgentClient.pidVariable)=\(pid); export \(AgentClient.pidVariable);\n"
        }
        Self.writeAll(1, text + "echo Agent pid \(pid);\n")
    }

    // MARK: The agent

    private func runAgent() throws {
        // Signals are taken by sigwait below: block them before any thread starts.
        var waitSet = sigset_t()
        sigemptyset(&waitSet)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&waitSet, s) }
        sigprocmask(SIG_BLOCK, &waitSet, nil)
        signal(SIGPIPE, SIG_IGN)
        let hardening = qssh_agent_harden_process()
        let ready = internalReadyFd
        func fail(_ message: String) -> ToolError {
            if let ready { Self.writeAll(ready, "error \(message)\n") }
            return ToolError(message)
        }

        var ownedDirectory: String?
        let path: String
        if let socket {
            path = socket
        } else {
            let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
            var template = Array("\(base)/qssh-XXXXXXXXXX".utf8CString)
            guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
                throw fail("mkdtemp in \(base): \(String(cString: strerror(errno)))")
            }
            let dir = String(cString: made)
            chmod(dir, 0o700)
            ownedDirectory = dir
            path = "\(dir)/agent.\(getpid())"
        }
        var configuration = AgentServer.Configuration(socketPath: path)
        if debug {
            configuration.log = { Terminal.warn("qssh-agent: \(PrintableText.escapedKeepingLines($0))") }
        }
        let server: AgentServer
        do {
            server = try AgentServer(configuration: configuration)
        } catch {
            if let ownedDirectory { rmdir(ownedDirectory) }
            throw fail("\(error)")
        }
        if hardening != 0 && debug {
            Terminal.warn("qssh-agent: could not disable core dumps / tracing: \(String(cString: strerror(hardening)))")
        }
        if let ready {
            Self.writeAll(ready, "ok \(path)\n")
            close(ready)
            // A background agent keeps nothing of the terminal it was started from.
            let null = open("/dev/null", O_RDWR)
            if null >= 0 {
                dup2(null, 1)
                dup2(null, 2)
                if null > 2 { close(null) }
            }
        } else {
            printShell(socket: path, pid: getpid())
        }
        var caught: Int32 = 0
        while sigwait(&waitSet, &caught) != 0 {}
        server.stop()
        if let ownedDirectory { rmdir(ownedDirectory) }
        if debug { Terminal.warn("qssh-agent: exiting on signal \(caught)") }
    }

    private static func writeAll(_ fd: CInt, _ text: String) {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            off += n
        }
    }
}

/// kill(2) (the command's `kill` flag hides the C function inside the type).
private func sendSignal(_ pid: pid_t, _ signal: Int32) -> Int32 { kill(pid, signal) }
