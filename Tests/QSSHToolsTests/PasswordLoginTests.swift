import Foundation
import QSSHTestSupport
import Testing

extension ToolSuites {
    /// qsshd --password-auth with a real system account (docs/protocol.md §7.10). Needs root
    /// (useradd, chpasswd, /etc/pam.d); the account and the PAM service file are removed afterwards.
    @Suite("qsshd --password-auth (PAM)", .serialized, .enabled(if: getuid() == 0, "needs root to create a throwaway account"))
    struct PasswordLoginTests {
        /// A throwaway account with a password, a PAM service using pam_unix (no failure delay, so
        /// that only qsshd's own rate limit slows anything down) and pam_env with its own file.
        final class Fixture {
            let dir: String
            let user: String
            let password = "Pw-\(UUID().uuidString.prefix(8))-ok"
            let service: String
            var servicePath: String { "/etc/pam.d/" + service }

            /// - Parameter nodelay: pam_unix without its own failure delay.
            init(nodelay: Bool = true) throws {
                dir = try makeTempDir()
                chmod(dir, 0o755)
                let tag = UUID().uuidString.prefix(8).lowercased()
                user = "qpam\(tag)"
                service = "qsshd-test-\(tag)"
                try Self.sh("useradd -m -s /bin/sh \(user)")
                try Self.sh("echo '\(user):\(password)' | chpasswd")
                try "QSSH_PAM_TEST DEFAULT=from-pam-env\n".write(toFile: dir + "/pam_env.conf", atomically: true, encoding: .utf8)
                try "\(user) soft nofile 777\n\(user) hard nofile 888\n".write(toFile: dir + "/limits.conf", atomically: true, encoding: .utf8)
                try """
                    auth     required pam_unix.so\(nodelay ? " nodelay" : "")
                    account  required pam_unix.so
                    session  required pam_env.so readenv=0 user_readenv=0 conffile=\(dir)/pam_env.conf
                    session  required pam_limits.so conf=\(dir)/limits.conf
                    session  optional pam_exec.so \(dir)/session-hook
                    session  required pam_unix.so

                    """.write(toFile: servicePath, atomically: true, encoding: .utf8)
                for (t, f) in [("user", "id"), ("host", "host")] {
                    let r = try Tools.run("qssh-keygen", ["-q", "-t", t, "-f", dir + "/" + f, "-N", "", "-C", f])
                    guard r.status == 0 else { throw ToolTestError(r.stderr) }
                }
                // pam_exec runs this when the session opens and when it closes.
                try "#!/bin/sh\necho \"$PAM_TYPE $PAM_USER $PAM_RHOST\" >> \(dir)/session.log\n"
                    .write(toFile: dir + "/session-hook", atomically: true, encoding: .utf8)
                chmod(dir + "/session-hook", 0o755)
                // Askpass programs: each appends a line to its log, then prints its answer.
                for (name, answer) in [("right", password), ("wrong", "not-the-password")] {
                    let script = "#!/bin/sh\necho \"$1\" >> \(dir)/askpass-\(name).log\necho '\(answer)'\n"
                    try script.write(toFile: dir + "/askpass-" + name, atomically: true, encoding: .utf8)
                    chmod(dir + "/askpass-" + name, 0o755)
                }
            }

            deinit {
                try? Self.sh("userdel -r \(user) 2>/dev/null; true")
                try? FileManager.default.removeItem(atPath: servicePath)
                try? FileManager.default.removeItem(atPath: dir)
            }

            static func sh(_ command: String) throws {
                let r = try Tools.run("/bin/sh", ["-c", command])
                guard r.status == 0 else { throw ToolTestError("\(command): \(r.stderr)") }
            }

            func server(_ extra: [String], quic: Bool = false) throws -> ServeProcess {
                try ServeProcess(
                    tool: "qsshd",
                    arguments: ["-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", quic ? "--quic" : "--no-quic", "-v"] + extra)
            }

            var sessionLog: String { (try? String(contentsOfFile: dir + "/session.log", encoding: .utf8)) ?? "" }

            /// Waits (up to 10 s) until the PAM session hook has logged `text`.
            func waitForSessionLog(_ text: String) -> Bool {
                let deadline = Date().addingTimeInterval(10)
                while Date() < deadline {
                    if sessionLog.contains(text) { return true }
                    usleep(20_000)
                }
                return sessionLog.contains(text)
            }

            /// Times the askpass program `name` was run.
            func asked(_ name: String) -> Int {
                ((try? String(contentsOfFile: dir + "/askpass-\(name).log", encoding: .utf8)) ?? "")
                    .split(separator: "\n").count
            }

            func qssh(
                port: Int, askpass: String, identity: String = "none", options: [String] = [],
                command: String = "echo \"env:$QSSH_PAM_TEST\"; id -un; echo \"nofile:$(ulimit -Sn):$(ulimit -Hn)\"; exit 7"
            ) throws -> Tools.Result {
                var env = ProcessInfo.processInfo.environment
                env["SSH_ASKPASS"] = dir + "/askpass-" + askpass
                env["SSH_ASKPASS_REQUIRE"] = "force"
                env.removeValue(forKey: "QSSH_AUTH_SOCK")
                return try Tools.run(
                    "qssh",
                    ["-p", "\(port)", "-i", dir + "/" + identity, "--known-hosts", dir + "/known_hosts",
                     "-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=\(dir)/ssh_known_hosts", "-F", "none"]
                        + options + ["\(user)@127.0.0.1", command],
                    environment: env)
            }
        }

        @Test("a real account logs in with its password (exit status and PAM environment come through); wrong, locked and expired are refused and logged; failures in a row are slowed; the audit log records them")
        func passwordLogin() throws {
            let f = try Fixture()
            let server = try f.server(["--password-auth", "--pam-service", f.service, "--audit-log", f.dir + "/audit.log"], quic: true)
            var stopped = false
            defer { if !stopped { server.stop() } }

            // No key at all: a throwaway key opens the tunnel, the password logs in.
            let ok = try f.qssh(port: server.port, askpass: "right")
            #expect(ok.status == 7, "\(ok.stderr)")
            // pam_env's variable and pam_limits' limits reach the session; qsshd keeps its own limits.
            #expect(String(decoding: ok.stdout, as: UTF8.self) == "env:from-pam-env\n\(f.user)\nnofile:777:888\n", "\(ok.stderr)")
            let serverLimits = (try? String(contentsOfFile: "/proc/\(server.process.processIdentifier)/limits", encoding: .utf8)) ?? ""
            let openFiles = serverLimits.split(separator: "\n").first { $0.hasPrefix("Max open files") }.map {
                $0.split(separator: " ").dropFirst(3).prefix(2).map(String.init)
            }
            #expect(openFiles != nil && openFiles != ["777", "888"], "\(serverLimits)")
            #expect(f.asked("right") == 1)
            #expect(server.waitForLog("accepted \(f.user) from 127.0.0.1 with a password (PAM service \(f.service))"), "\(server.log)")
            // The PAM session opened for the login and closes when the connection ends.
            #expect(f.waitForSessionLog("close_session \(f.user) 127.0.0.1"), "\(f.sessionLog)")
            #expect(f.sessionLog.hasPrefix("open_session \(f.user) 127.0.0.1\nclose_session"), "\(f.sessionLog)")

            // The same over the QUIC carrier (one stream of a QUIC connection, §8).
            let overQUIC = try f.qssh(port: server.port, askpass: "right", options: ["-o", "Transport=quic"], command: "exit 5")
            #expect(overQUIC.status == 5, "\(overQUIC.stderr)")
            // The QUIC stream's login knows the client's address (PAM_RHOST, throttle key, logs): not '?'.
            let acceptedLine = "accepted \(f.user) from 127.0.0.1 with a password (PAM service \(f.service))"
            let seenDeadline = Date().addingTimeInterval(10)
            while server.log.components(separatedBy: acceptedLine).count < 3 && Date() < seenDeadline { usleep(20_000) }
            #expect(server.log.components(separatedBy: acceptedLine).count == 3, "\(server.log)")
            #expect(!server.log.contains("from ?"), "\(server.log)")
            #expect(f.waitForSessionLog("open_session \(f.user) 127.0.0.1\nclose_session \(f.user) 127.0.0.1\nopen_session \(f.user) 127.0.0.1"), "\(f.sessionLog)")

            // A key that is not authorized is tried first, then the password.
            let keyFirst = try f.qssh(port: server.port, askpass: "right", identity: "id", command: "exit 0")
            #expect(keyFirst.status == 0, "\(keyFirst.stderr)")
            #expect(server.waitForLog("of \(f.user) from 127.0.0.1 not accepted ("), "\(server.log)")
            #expect(server.log.contains("password login offered"))

            // Wrong password: asked three times, refused, each failure logged.
            let wrong = try f.qssh(port: server.port, askpass: "wrong")
            #expect(wrong.status == 255 && wrong.stderr.contains("refused the password (3 attempts)"), "\(wrong.stderr)")
            #expect(wrong.stdout.isEmpty)
            #expect(f.asked("wrong") == 3)
            // Three logins so far opened a session each; wrong passwords open none.
            #expect(f.sessionLog.components(separatedBy: "open_session").count - 1 == 3, "\(f.sessionLog)")
            #expect(server.waitForLog("refused the password of \(f.user) from 127.0.0.1: PAM authentication failed"), "\(server.log)")

            // Three more in a row from this address: the 4th, 5th and 6th are answered after 1, 2 and 4 s.
            let started = Date()
            let slow = try f.qssh(port: server.port, askpass: "wrong")
            let elapsed = Date().timeIntervalSince(started)
            #expect(slow.status == 255, "\(slow.stderr)")
            #expect(elapsed >= 7, "six failures in a row took only \(elapsed) s")
            for (ms, n) in [(1000, 4), (2000, 5), (4000, 6)] {
                #expect(server.waitForLog("answered after \(ms) ms (\(n) failures in a row from this address)"), "\(server.log)")
            }
            // A success starts the count again.
            #expect(try f.qssh(port: server.port, askpass: "right", command: "true").status == 0)

            // A locked account: the right password is refused.
            try Fixture.sh("usermod -L \(f.user)")
            let locked = try f.qssh(port: server.port, askpass: "right", command: "true")
            #expect(locked.status == 255 && locked.stderr.contains("refused the password"), "\(locked.stderr)")
            try Fixture.sh("usermod -U \(f.user)")
            #expect(try f.qssh(port: server.port, askpass: "right", command: "true").status == 0)

            // An expired account: PAM's account stack refuses it.
            try Fixture.sh("chage -E 0 \(f.user)")
            let expired = try f.qssh(port: server.port, askpass: "right", command: "true")
            #expect(expired.status == 255 && expired.stderr.contains("refused the password"), "\(expired.stderr)")
            #expect(server.waitForLog("PAM account failed"), "\(server.log)")
            try Fixture.sh("chage -E -1 \(f.user)")

            // BatchMode never asks.
            let before = f.asked("right")
            let batch = try f.qssh(port: server.port, askpass: "right", identity: "id", options: ["-o", "BatchMode=yes"], command: "true")
            #expect(batch.status == 255 && batch.stderr.contains("no password was given"), "\(batch.stderr)")
            let noPassword = try f.qssh(
                port: server.port, askpass: "right", identity: "id", options: ["-o", "PasswordAuthentication=no"], command: "true")
            #expect(noPassword.status == 255 && noPassword.stderr.contains("no password was given"), "\(noPassword.stderr)")
            #expect(f.asked("right") == before)

            server.stop()
            stopped = true
            let audit = try String(contentsOfFile: f.dir + "/audit.log", encoding: .utf8)
            #expect(audit.contains("\"auth-failure\"") && audit.contains("password: PAM authentication failed"), "\(audit)")
            #expect(audit.contains("password: PAM account failed"))
            #expect(audit.contains("\"auth-success\"") && audit.contains("password (PAM service \(f.service))"))
            #expect(audit.contains("\"auth-partial\""))
            let verified = try Tools.run("qsshd", ["--verify-audit", f.dir + "/audit.log", "-h", f.dir + "/host"])
            #expect(verified.status == 0, "\(verified.stderr)")
        }

        @Test("on a terminal (no SSH_ASKPASS): the prompt appears, the password is not echoed, a wrong one is asked again", .enabled(if: TmuxPane.available))
        func terminalPrompt() throws {
            let f = try Fixture()
            let server = try f.server(["--password-auth", "--pam-service", f.service])
            defer { server.stop() }
            let tmux = TmuxPane(socket: "qssh-pam-test-\(getpid())", scratch: f.dir)
            defer { tmux.kill() }
            let qsshPath = try Tools.path("qssh")
            try tmux.start(width: 120, height: 30, command:
                "env -u SSH_ASKPASS -u QSSH_AUTH_SOCK '\(qsshPath)' -F none -p \(server.port) -i '\(f.dir)/none' --known-hosts '\(f.dir)/known_hosts' -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile='\(f.dir)/ssh_known_hosts' \(f.user)@127.0.0.1 'echo PW-OK-$((6*7)); exit 3'; echo QSSH-EXIT=$?; sleep 60")
            try tmux.waitFor("\(f.user)@127.0.0.1's password:")  // capture-pane drops the trailing space
            tmux.run(["send-keys", "-t", "t", "-l", "not-the-password"])
            tmux.run(["send-keys", "-t", "t", "Enter"])
            try tmux.waitFor("Permission denied, please try again.")
            try tmux.waitFor("password:", after: "Permission denied, please try again.")
            tmux.run(["send-keys", "-t", "t", "-l", f.password])
            tmux.run(["send-keys", "-t", "t", "Enter"])
            try tmux.waitFor("QSSH-EXIT=3")
            let screen = tmux.pane()
            #expect(screen.contains("PW-OK-42"), "\(screen)")
            #expect(!screen.contains(f.password) && !screen.contains("not-the-password"), "echoed: \(screen)")
        }

        @Test("pam_unix's own failure delay is waited outside PAM and added to the answer time")
        func pamFailureDelay() throws {
            let f = try Fixture(nodelay: false)
            let server = try f.server(["--password-auth", "--pam-service", f.service])
            defer { server.stop() }
            let started = Date()
            let wrong = try f.qssh(port: server.port, askpass: "wrong", command: "true")
            let elapsed = Date().timeIntervalSince(started)
            #expect(wrong.status == 255 && wrong.stderr.contains("refused the password (3 attempts)"), "\(wrong.stderr)")
            #expect(server.waitForLog("ms of them asked for by PAM"), "\(server.log)")
            // pam_unix asks for about 2 s per failure (libpam may shorten it by up to a quarter).
            #expect(elapsed >= 4, "three failures with PAM's delay took only \(elapsed) s")
            // The right password is not slowed by the failures before it.
            #expect(try f.qssh(port: server.port, askpass: "right", command: "true").status == 0)
        }

        @Test("without --password-auth no password is asked for and the login is refused")
        func offByDefault() throws {
            let f = try Fixture()
            let server = try f.server([])
            defer { server.stop() }
            let r = try f.qssh(port: server.port, askpass: "right", identity: "id", command: "true")
            #expect(r.status == 255 && r.stderr.contains("permission denied"), "\(r.stderr)")
            #expect(f.asked("right") == 0)
            #expect(server.waitForLog("refused \(f.user) from 127.0.0.1"), "\(server.log)")
            // --password-auth and --bridge do not go together; a bad service name is refused.
            let both = try Tools.run("qsshd", ["--password-auth", "--bridge", "127.0.0.1:22", "-h", f.dir + "/host", "-p", "0"])
            #expect(both.status != 0 && both.stderr.contains("--password-auth cannot be combined with --bridge"), "\(both.stderr)")
            let bad = try Tools.run("qsshd", ["--password-auth", "--pam-service", "../etc/x", "-h", f.dir + "/host", "-p", "0"])
            #expect(bad.status != 0 && bad.stderr.contains("is not a PAM service name"), "\(bad.stderr)")
        }
    }
}
