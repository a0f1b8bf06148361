import Foundation
import QNSPBench
import Testing

extension ToolSuites {
    @Suite("qssh-agent and qssh-add")
    struct AgentToolTests {
        /// The environment of a tool run: ours plus `extra` (and no agent unless `extra` names one).
        func env(_ extra: [String: String]) -> [String: String] {
            var e = ProcessInfo.processInfo.environment
            e["QSSH_AUTH_SOCK"] = nil
            e["QSSH_AGENT_PID"] = nil
            e["SSH_ASKPASS"] = nil
            e["SSH_ASKPASS_REQUIRE"] = nil
            e["SHELL"] = "/bin/sh"
            for (k, v) in extra { e[k] = v }
            return e
        }

        /// Polls `condition` every 20 ms for at most 10 s.
        func waitUntil(_ what: String, _ condition: () -> Bool) throws {
            for _ in 0..<500 {
                if condition() { return }
                usleep(20_000)
            }
            throw ToolTestError("timed out waiting until \(what)")
        }

        func keygen(_ path: String, comment: String = "agent-test") throws {
            let r = try Tools.run("qssh-keygen", ["-q", "-t", "user", "-f", path, "-N", "", "-C", comment])
            guard r.status == 0 else { throw ToolTestError(r.stderr) }
        }

        func script(_ path: String, _ body: String) throws {
            try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o700)
        }

        /// `qssh-agent -D -a PATH` as a child of the test; returns once the socket exists.
        func foregroundAgent(_ socket: String, environment: [String: String]) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try Tools.path("qssh-agent"))
            p.arguments = ["-D", "-a", socket]
            p.environment = environment
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            // The agent prints its shell lines once the socket listens.
            var text = ""
            while !text.contains("echo Agent pid") {
                let d = out.fileHandleForReading.availableData
                if d.isEmpty { break }
                text += String(decoding: d, as: UTF8.self)
            }
            guard text.contains("QSSH_AUTH_SOCK=\(socket);") else {
                p.terminate()
                throw ToolTestError("qssh-agent -D did not start: \(text)")
            }
            return p
        }

        @Test(
            "qssh-agent -s daemonizes (0600 socket in a 0700 directory); qssh-add -l/-L/-d/-D/-t/-x/-X; qssh-agent -k leaves nothing behind"
        )
        func lifecycle() throws {
            let dir = try makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let started = try Tools.run("qssh-agent", ["-s"], environment: env(["TMPDIR": dir]))
            #expect(started.status == 0, "\(started.stderr)")
            let out = String(decoding: started.stdout, as: UTF8.self)
            guard let sockRange = out.range(of: #"QSSH_AUTH_SOCK=[^;]+"#, options: .regularExpression),
                let pidRange = out.range(of: #"QSSH_AGENT_PID=\d+"#, options: .regularExpression)
            else {
                Issue.record("no shell lines: \(out)")
                return
            }
            let socket = String(out[sockRange].dropFirst("QSSH_AUTH_SOCK=".count))
            let pidText = String(out[pidRange].dropFirst("QSSH_AGENT_PID=".count))
            let pid = Int32(pidText) ?? -1
            #expect(out.hasSuffix("echo Agent pid \(pidText);\n"))
            let socketDir = (socket as NSString).deletingLastPathComponent
            #expect(socketDir.hasPrefix(dir + "/qssh-"))
            #expect(try mode(socketDir) == 0o700)
            #expect(try mode(socket) == 0o600)
            let agentEnv = env(["QSSH_AUTH_SOCK": socket, "QSSH_AGENT_PID": pidText])
            defer { kill(pid, SIGKILL) }

            try keygen(dir + "/id", comment: "first")
            try keygen(dir + "/id2", comment: "second")
            let empty = try Tools.run("qssh-add", ["-l"], environment: agentEnv)
            #expect(
                empty.status == 1 && String(decoding: empty.stdout, as: UTF8.self) == "The agent has no identities.\n"
            )
            let added = try Tools.run("qssh-add", [dir + "/id"], environment: agentEnv)
            #expect(added.status == 0 && added.stderr.contains("Identity added: \(dir)/id (SHA256:"), "\(added.stderr)")
            let timed = try Tools.run("qssh-add", ["-t", "10m", dir + "/id2"], environment: agentEnv)
            #expect(timed.status == 0 && timed.stderr.contains("Lifetime set to 600 seconds"), "\(timed.stderr)")
            let fingerprint = try Tools.run("qssh-keygen", ["-l", "-f", dir + "/id.pub"])
            let keygenLine = String(decoding: fingerprint.stdout, as: UTF8.self)
            let fp = String(keygenLine.split(separator: " ")[1])
            let list = try Tools.run("qssh-add", ["-l"], environment: agentEnv)
            let listed = String(decoding: list.stdout, as: UTF8.self)
            // The same line as qssh-keygen -l prints for the key.
            #expect(
                list.status == 0 && listed.hasPrefix(keygenLine) && listed.contains(" second (ML-DSA-65)"),
                "\(listed)"
            )
            let lines = try Tools.run("qssh-add", ["-L"], environment: agentEnv)
            let pub1 = try String(contentsOfFile: dir + "/id.pub", encoding: .utf8)
            let pub2 = try String(contentsOfFile: dir + "/id2.pub", encoding: .utf8)
            #expect(String(decoding: lines.stdout, as: UTF8.self) == pub1 + pub2)

            // -x / -X with the password from SSH_ASKPASS.
            try script(dir + "/askpass", "echo sesame")
            try script(dir + "/askpass-wrong", "echo open")
            let lockEnv = agentEnv.merging(["SSH_ASKPASS": dir + "/askpass", "SSH_ASKPASS_REQUIRE": "force"]) { $1 }
            let locked = try Tools.run("qssh-add", ["-x"], environment: lockEnv)
            #expect(locked.status == 0 && locked.stderr.contains("Agent locked."), "\(locked.stderr)")
            #expect(try Tools.run("qssh-add", ["-l"], environment: agentEnv).status == 1)
            #expect(try Tools.run("qssh-add", ["-D"], environment: agentEnv).status == 1)
            let wrong = try Tools.run(
                "qssh-add",
                ["-X"],
                environment: lockEnv.merging(["SSH_ASKPASS": dir + "/askpass-wrong"]) { $1 }
            )
            #expect(wrong.status == 1 && wrong.stderr.contains("Failed to unlock agent."), "\(wrong.stderr)")
            let unlocked = try Tools.run("qssh-add", ["-X"], environment: lockEnv)
            #expect(unlocked.status == 0 && unlocked.stderr.contains("Agent unlocked."), "\(unlocked.stderr)")

            // -d with the key file gone: its .pub names the key.
            try FileManager.default.removeItem(atPath: dir + "/id")
            let removed = try Tools.run("qssh-add", ["-d", dir + "/id"], environment: agentEnv)
            #expect(removed.status == 0 && removed.stderr.contains("Identity removed"), "\(removed.stderr)")
            #expect(
                !String(decoding: try Tools.run("qssh-add", ["-l"], environment: agentEnv).stdout, as: UTF8.self)
                    .contains(fp)
            )
            #expect(try Tools.run("qssh-add", ["-D"], environment: agentEnv).status == 0)
            #expect(try Tools.run("qssh-add", ["-l"], environment: agentEnv).status == 1)

            let killed = try Tools.run("qssh-agent", ["-k"], environment: agentEnv)
            #expect(killed.status == 0)
            #expect(String(decoding: killed.stdout, as: UTF8.self).contains("echo Agent pid \(pidText) killed;"))
            try waitUntil("the agent exits and removes its socket and directory") {
                kill(pid, 0) != 0 && !FileManager.default.fileExists(atPath: socket)
                    && !FileManager.default.fileExists(atPath: socketDir)
            }
            let gone = try Tools.run("qssh-add", ["-l"], environment: agentEnv)
            #expect(
                gone.status == 2 && gone.stderr.contains("Could not open a connection to your authentication agent")
            )
            let noAgent = try Tools.run("qssh-add", ["-l"], environment: env([:]))
            #expect(noAgent.status == 2)
        }

        @Test("qssh-agent -D -a SOCKET: -k (SIGTERM) removes the socket; a second agent on the same path is refused")
        func foreground() throws {
            let dir = try makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            chmod(dir, 0o700)
            let socket = dir + "/agent.sock"
            let agent = try foregroundAgent(socket, environment: env([:]))
            let second = try Tools.run("qssh-agent", ["-D", "-a", socket], environment: env([:]))
            #expect(second.status == 1 && second.stderr.contains("Address already in use"), "\(second.stderr)")
            let killed = try Tools.run(
                "qssh-agent",
                ["-k"],
                environment: env(["QSSH_AGENT_PID": "\(agent.processIdentifier)"])
            )
            #expect(killed.status == 0, "\(killed.stderr)")
            agent.waitUntilExit()
            #expect(agent.terminationStatus == 0)
            #expect(!FileManager.default.fileExists(atPath: socket))
        }

        @Test(
            "qssh logs in with the agent's key while the private key file is gone; -c with a no, or a locked agent, refuses"
        )
        func login() throws {
            let dir = try makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            chmod(dir, 0o700)
            let h = try Tools.run("qssh-keygen", ["-q", "-t", "host", "-f", dir + "/host", "-N", ""])
            #expect(h.status == 0)
            try keygen(dir + "/id")
            try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: dir + "/authorized_keys")
            let server = try ServeProcess(
                tool: "qsshd",
                arguments: [
                    "-p", "0", "-l", "127.0.0.1", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys",
                ]
            )
            defer { server.stop() }
            try script(dir + "/no", "echo \"$1\" > '\(dir)/asked'; exit 1")
            let socket = dir + "/agent.sock"
            let agent = try foregroundAgent(socket, environment: env(["SSH_ASKPASS": dir + "/no"]))
            defer {
                agent.terminate()
                agent.waitUntilExit()
            }
            let withAgent = env(["QSSH_AUTH_SOCK": socket])
            #expect(try Tools.run("qssh-add", [dir + "/id"], environment: withAgent).status == 0)
            try FileManager.default.removeItem(atPath: dir + "/id")
            func qssh(_ environment: [String: String], identity: String = "id") throws -> Tools.Result {
                try Tools.run(
                    "qssh",
                    [
                        "-v", "-p", "\(server.port)", "-i", dir + "/" + identity, "--known-hosts", dir + "/known_hosts",
                        "-o", "StrictHostKeyChecking=accept-new", "127.0.0.1", "echo logged-in",
                    ],
                    environment: environment
                )
            }
            // Control: without the agent the missing key file stops the login.
            let without = try qssh(env([:]))
            #expect(without.status != 0 && without.stderr.contains("No such file"), "\(without.stderr)")
            let viaAgent = try qssh(withAgent)
            #expect(viaAgent.status == 0, "\(viaAgent.stderr)")
            #expect(String(decoding: viaAgent.stdout, as: UTF8.self) == "logged-in\n")
            #expect(viaAgent.stderr.contains("using the agent's key SHA256:"), "\(viaAgent.stderr)")
            // Neither file: the agent's first key.
            try FileManager.default.moveItem(atPath: dir + "/id.pub", toPath: dir + "/saved.pub")
            let noFiles = try qssh(withAgent, identity: "nothing-here")
            #expect(noFiles.status == 0, "\(noFiles.stderr)")

            // Locked: the agent lists no key, so qssh falls back to the (missing) file.
            try script(dir + "/pw", "echo pw")
            let lockEnv = withAgent.merging(["SSH_ASKPASS": dir + "/pw", "SSH_ASKPASS_REQUIRE": "force"]) { $1 }
            #expect(try Tools.run("qssh-add", ["-x"], environment: lockEnv).status == 0)
            let whileLocked = try qssh(withAgent)
            #expect(
                whileLocked.status != 0 && whileLocked.stderr.contains("the agent does not hold the key"),
                "\(whileLocked.stderr)"
            )
            #expect(try Tools.run("qssh-add", ["-X"], environment: lockEnv).status == 0)

            // -c: the agent's SSH_ASKPASS says no, so the login is refused and nothing runs.
            #expect(try Tools.run("qssh-add", ["-D"], environment: withAgent).status == 0)
            try keygen(dir + "/c2")
            let authorized =
                try String(contentsOfFile: dir + "/authorized_keys", encoding: .utf8)
                + String(contentsOfFile: dir + "/c2.pub", encoding: .utf8)
            try authorized.write(toFile: dir + "/authorized_keys", atomically: true, encoding: .utf8)
            #expect(try Tools.run("qssh-add", ["-c", dir + "/c2"], environment: withAgent).status == 0)
            try FileManager.default.removeItem(atPath: dir + "/c2")
            let denied = try qssh(withAgent, identity: "c2")
            #expect(denied.status == 255, "\(denied.stderr)")
            #expect(denied.stderr.contains("agent refused to sign"), "\(denied.stderr)")
            let asked = try String(contentsOfFile: dir + "/asked", encoding: .utf8)
            #expect(asked.contains("Allow use of key agent-test?"), "\(asked)")
        }
    }
}

extension ToolSuites.AgentToolTests {
    @Test(
        "OpenSSH's ssh-add drives qssh-agent (add, -l, -L, -t, -x/-X, -d, -D) and ssh logs in to a stock sshd with the agent's Ed25519 key alone",
        .enabled(if: StockSSHD.binary != nil && FileManager.default.isExecutableFile(atPath: "/usr/bin/ssh-add"))
    )
    func openSSHInterop() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o700)
        let sshd = try StockSSHD.start(dir: dir)
        defer { sshd.stop() }
        let socket = dir + "/agent.sock"
        try script(dir + "/pw", "echo opensesame")
        let agent = try foregroundAgent(socket, environment: env([:]))
        defer {
            agent.terminate()
            agent.waitUntilExit()
        }
        let ssh = env(["SSH_AUTH_SOCK": socket, "QSSH_AUTH_SOCK": socket])
        func sshAdd(_ args: [String], _ environment: [String: String]? = nil) throws -> Tools.Result {
            try Tools.run("/usr/bin/ssh-add", args, environment: environment ?? ssh)
        }
        func login() throws -> Tools.Result {
            try Tools.run(
                "/usr/bin/ssh",
                [
                    "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                    "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentityAgent=\(socket)", "-o",
                    "IdentityFile=\(dir)/none",
                    "-p", "\(sshd.port)", "127.0.0.1", "echo agent-login",
                ],
                environment: ssh
            )
        }
        let none = try sshAdd(["-l"])
        #expect(
            none.status == 1 && String(decoding: none.stdout, as: UTF8.self).contains("The agent has no identities."),
            "\(none.stderr)"
        )
        let added = try sshAdd(["-t", "3600", sshd.userKey])
        #expect(added.status == 0 && added.stderr.contains("Identity added"), "\(added.stderr)")
        let fingerprint = try Tools.run("/usr/bin/ssh-keygen", ["-l", "-f", sshd.userKey + ".pub"])
        let fp = String(String(decoding: fingerprint.stdout, as: UTF8.self).split(separator: " ")[1])
        let listed = String(decoding: try sshAdd(["-l"]).stdout, as: UTF8.self)
        #expect(listed.hasPrefix("256 \(fp) ") && listed.hasSuffix(" (ED25519)\n"), "\(listed)")
        let ours = String(decoding: try Tools.run("qssh-add", ["-l"], environment: ssh).stdout, as: UTF8.self)
        #expect(ours.hasPrefix("256 \(fp) ") && ours.hasSuffix(" (ED25519)\n"), "\(ours)")
        let pub = try String(contentsOfFile: sshd.userKey + ".pub", encoding: .utf8).split(separator: " ")
        let lines = String(decoding: try sshAdd(["-L"]).stdout, as: UTF8.self).split(separator: " ")
        #expect(lines.prefix(2) == pub.prefix(2))

        // The key file is gone: only the agent can sign the login.
        try FileManager.default.removeItem(atPath: sshd.userKey)
        let r = try login()
        #expect(r.status == 0 && String(decoding: r.stdout, as: UTF8.self) == "agent-login\n", "\(r.stderr)")

        let lockEnv = ssh.merging(["SSH_ASKPASS": dir + "/pw", "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"]) { $1 }
        #expect(try sshAdd(["-x"], lockEnv).status == 0)
        #expect(try sshAdd(["-l"]).status == 1)
        let locked = try login()
        #expect(locked.status == 255, "\(locked.stderr)")
        #expect(try sshAdd(["-X"], lockEnv).status == 0)
        #expect(try login().status == 0)

        let removed = try sshAdd(["-d", sshd.userKey + ".pub"])
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(try sshAdd(["-l"]).status == 1)
        #expect(try login().status == 255)
        #expect(try sshAdd(["-D"]).status == 0)
    }
}
