import Foundation
import NIOCore
import QSSHSession

/// PAM's session stack for one password login, in a process of its own (docs/protocol.md §7.10):
/// `qsshd --internal-pam-session SERVICE --internal-pam-user USER [--internal-pam-rhost HOST]`.
///
/// Modules such as pam_limits, pam_group, pam_umask or pam_systemd act on the calling process;
/// qsshd serves many users, so they act on this helper instead. It opens the session, reports
/// on stdout what the session's processes need (`env NAME=VALUE`, `limit RESOURCE SOFT HARD`,
/// then `ok`, or `error MESSAGE`), and holds the session until its stdin closes (qsshd closes
/// it when the connection ends); then it closes the session and exits.
package enum PAMSessionHelper {
    /// The helper's side. Returns the exit status.
    package static func run(service: String, user: String, remoteHost: String?) -> Int32 {
        // A qsshd that went away must not kill us with SIGPIPE before the session is closed.
        signal(SIGPIPE, SIG_IGN)
        func say(_ line: String) {
            let text = line + "\n"
            _ = text.withCString { write(1, $0, strlen($0)) }
        }
        guard PasswordLoginService.isValidServiceName(service) else {
            say("error bad PAM service name")
            return 2
        }
        let transaction: PAMLogin
        switch PAMLogin.begin(service: service, user: user, remoteHost: remoteHost) {
        case .failure(let failure):
            say("error \(failure.description)")
            return 1
        case .success(let t): transaction = t
        }
        // Every exit path closes the session (if open) and ends the transaction.
        defer { transaction.end() }
        switch transaction.openSession() {
        case .failure(let failure):
            say("error \(failure.description)")
            return 1
        case .success(let session):
            for (name, value) in session.environment.sorted(by: { $0.key < $1.key })
            where !name.contains("\n") && !value.contains("\n") {
                say("env \(name)=\(value)")
            }
            for limit in session.limits { say("limit \(limit.resource) \(limit.soft) \(limit.hard)") }
            say("ok")
        }
        // Hold the session until qsshd closes our stdin.
        _ = BlockingIO.readText(0)
        return 0
    }

    /// How long qsshd waits for the helper's report before killing it (a hung session module).
    package static let reportTimeout: TimeAmount = .seconds(30)

    /// Whether `text` holds a whole report: its last line is `ok` or `error MESSAGE` (a line of
    /// its own, not the end of an `env` line).
    package static func isCompleteReport(_ text: String) -> Bool {
        guard text.hasSuffix("\n") else { return false }
        if text == "ok\n" || text.hasSuffix("\nok\n") { return true }
        let body = text.dropLast()
        let last = body.lastIndex(of: "\n").map { body[body.index(after: $0)...] } ?? body[...]
        return last.hasPrefix("error ")
    }

    /// Reads the report from `fd` until it is complete, the helper closes it, or `timeout`
    /// passes (then `timedOut`).
    package static func readReport(_ fd: CInt, timeout: TimeAmount) -> (text: String, timedOut: Bool) {
        let deadline = NIODeadline.now() + timeout
        var data = [UInt8](), chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let left = deadline - NIODeadline.now()
            guard left > .zero else { return (String(decoding: data, as: UTF8.self), true) }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(clamping: max(1, left.nanoseconds / 1_000_000)))
            if ready < 0 && errno == EINTR { continue }
            if ready < 0 { break }
            if ready == 0 { continue }  // the deadline check above ends it
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            if n <= 0 { break }
            data += chunk[0..<n]
            if data.count > 1 << 20 { break }  // no report is that long
            if isCompleteReport(String(decoding: data, as: UTF8.self)) { break }
        }
        return (String(decoding: data, as: UTF8.self), false)
    }

    /// An open session: the helper process, and what its report said.
    package struct Opened: @unchecked Sendable {
        package var process: ChildProcess
        package var session: PAMLogin.Session
    }

    /// qsshd's side (blocking: run it on a thread pool): starts the helper and reads its report.
    package static func open(service: String, user: String, remoteHost: String?) -> Result<Opened, PAMLogin.Failure> {
        var argv = [ChildProcess.currentExecutable, "--internal-pam-session", service, "--internal-pam-user", user]
        if let remoteHost { argv += ["--internal-pam-rhost", remoteHost] }
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(argv, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], directory: "/")
        } catch {
            return .failure(.init(step: .session, status: -1, message: "cannot start the PAM session helper: \(error)"))
        }
        let (report, timedOut) = readReport(child.stdout, timeout: reportTimeout)
        if timedOut {
            kill(child.pid, SIGKILL)
            finish(child)
            return .failure(.init(step: .session, status: -1,
                                  message: "the PAM session helper did not report within \(reportTimeout.nanoseconds / 1_000_000_000) s (killed)"))
        }
        var session = PAMLogin.Session()
        for line in report.split(separator: "\n") {
            if line.hasPrefix("env "), let eq = line.firstIndex(of: "="), line.index(line.startIndex, offsetBy: 4) < eq {
                session.environment[String(line[line.index(line.startIndex, offsetBy: 4)..<eq])] = String(line[line.index(after: eq)...])
            } else if line.hasPrefix("limit ") {
                let parts = line.split(separator: " ")
                if parts.count == 4, let r = Int32(parts[1]), let soft = UInt64(parts[2]), let hard = UInt64(parts[3]) {
                    session.limits.append(ResourceLimit(resource: r, soft: soft, hard: hard))
                }
            } else if line == "ok" {
                return .success(Opened(process: child, session: session))
            } else if line.hasPrefix("error ") {
                finish(child)
                return .failure(.init(step: .session, status: -1, message: String(line.dropFirst(6))))
            }
        }
        finish(child)
        return .failure(.init(step: .session, status: -1, message: "the PAM session helper ended without a report"))
    }

    /// Ends the session: closes the helper's stdin and waits for it (blocking).
    package static func finish(_ child: ChildProcess) {
        close(child.stdin)
        close(child.stdout)
        close(child.stderr)
        _ = child.waitForExit()
    }
}
