import Foundation
import NIOCore
import NIOSSH
import QSSHSession
import QSSHTools
import Testing

extension ToolSuites {
    /// qssh -A and qsshd's forwarded agent socket (docs/protocol.md §7.9), with real processes on 127.0.0.1.
    @Suite("agent forwarding (qssh -A)")
    struct AgentForwardingTests {
        let agentTools = AgentToolTests()

        /// A laptop agent holding a key whose private file is gone, and `count` qsshd accepting that key.
        struct Setup {
            let dir: String
            let agent: Process
            let socket: String
            let fingerprint: String
            let servers: [ServeProcess]

            func stop() {
                for s in servers { s.stop() }
                agent.terminate()
                agent.waitUntilExit()
                try? FileManager.default.removeItem(atPath: dir)
            }
        }

        /// `prepare` runs in the new directory before the servers start and gives more server options.
        func setUp(servers count: Int, serverOptions: [String] = [], prepare: ((String) throws -> [String])? = nil) throws -> Setup {
            let dir = try makeTempDir()
            chmod(dir, 0o700)
            try agentTools.keygen(dir + "/id", comment: "laptop")
            try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: dir + "/authorized_keys")
            let prepared = try prepare?(dir) ?? []
            let socket = dir + "/agent.sock"
            let agent = try agentTools.foregroundAgent(socket, environment: agentTools.env([:]))
            let added = try Tools.run("qssh-add", [dir + "/id"], environment: agentTools.env(["QSSH_AUTH_SOCK": socket]))
            guard added.status == 0 else { throw ToolTestError("qssh-add: \(added.stderr)") }
            let line = String(decoding: try Tools.run("qssh-keygen", ["-l", "-f", dir + "/id.pub"]).stdout, as: UTF8.self)
            let fingerprint = String(line.split(separator: " ")[1])
            // The private key file exists nowhere now: only the laptop's agent can sign.
            try FileManager.default.removeItem(atPath: dir + "/id")
            var servers: [ServeProcess] = []
            defer {
                if servers.count < count {  // a server did not start: undo the rest before the error goes up
                    for s in servers { s.stop() }
                    agent.terminate()
                    agent.waitUntilExit()
                    try? FileManager.default.removeItem(atPath: dir)
                }
            }
            for i in 0..<count {
                let h = try Tools.run("qssh-keygen", ["-q", "-t", "host", "-f", dir + "/host\(i)", "-N", ""])
                guard h.status == 0 else { throw ToolTestError(h.stderr) }
                servers.append(try ServeProcess(tool: "qsshd", arguments: [
                    "-v", "-p", "0", "-l", "127.0.0.1", "-h", dir + "/host\(i)", "--authorized-keys", dir + "/authorized_keys", "--no-quic",
                ] + serverOptions + prepared))
            }
            return Setup(dir: dir, agent: agent, socket: socket, fingerprint: fingerprint, servers: servers)
        }

        /// The qssh command line (as a list) for one hop to `port`; `known` names its known_hosts file.
        func qsshArguments(_ s: Setup, port: Int, known: String, _ extra: [String]) throws -> [String] {
            [
                "-F", "none", "-p", "\(port)", "-i", s.dir + "/id", "--known-hosts", s.dir + "/" + known,
                "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes",
            ] + extra
        }

        func qssh(_ s: Setup, server: Int = 0, _ extra: [String], agent: Bool = true) throws -> Tools.Result {
            try Tools.run(
                "qssh", try qsshArguments(s, port: s.servers[server].port, known: "known_hosts\(server)", extra),
                environment: agentTools.env(agent ? ["QSSH_AUTH_SOCK": s.socket] : [:]))
        }

        /// The shell text of a qssh run on a server (absolute path: the session's PATH is the login's).
        func remoteQSSH(_ s: Setup, server: Int, _ extra: [String]) throws -> String {
            ([try Tools.path("qssh")] + (try qsshArguments(s, port: s.servers[server].port, known: "known_hosts\(server)", extra)))
                .map(shellQuote).joined(separator: " ")
        }

        func shellQuote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

        func output(_ r: Tools.Result) -> String { String(decoding: r.stdout, as: UTF8.self) }

        @Test("qssh -A: qssh-add -l on the server lists the laptop agent's key; the socket is 0600 in a 0700 directory of the user's, gone once qssh has exited")
        func listThroughForwardedSocket() throws {
            let s = try setUp(servers: 1)
            defer { s.stop() }
            let qsshAdd = try Tools.path("qssh-add")
            let r = try qssh(s, ["-A", "127.0.0.1",
                "echo \"sock=$QSSH_AUTH_SOCK\"; stat -c '%a %u' \"$QSSH_AUTH_SOCK\" \"$(dirname \"$QSSH_AUTH_SOCK\")\"; \(shellQuote(qsshAdd)) -l"])
            #expect(r.status == 0, "\(r.stderr)")
            let lines = output(r).split(separator: "\n").map(String.init)
            guard lines.count == 4, lines[0].hasPrefix("sock=/") else {
                Issue.record("unexpected output: \(output(r)) \(r.stderr)")
                return
            }
            let socket = String(lines[0].dropFirst(5))
            let directory = (socket as NSString).deletingLastPathComponent
            #expect(socket != s.socket && (directory as NSString).lastPathComponent.hasPrefix("qssh-"), "\(socket)")
            #expect(lines[1] == "600 \(getuid())" && lines[2] == "700 \(getuid())", "\(lines)")
            #expect(lines[3].contains(s.fingerprint) && lines[3].contains(" laptop (ML-DSA-65)"), "\(lines[3])")
            // The exit status came after the session's process ended, and the socket went with it.
            #expect(!FileManager.default.fileExists(atPath: socket))
            #expect(!FileManager.default.fileExists(atPath: directory))
            #expect(s.servers[0].waitForLog("agent forwarding for \(ProcessInfo.processInfo.environment["USER"] ?? "root"): \(socket)"), "\(s.servers[0].log)")
        }

        /// Starts `qssh -A` with a remote command that prints the forwarded socket and stays; returns the process and the path.
        func lingeringSession(_ s: Setup, server: Int, options: [String] = []) throws -> (Process, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try Tools.path("qssh"))
            p.arguments = try qsshArguments(s, port: s.servers[server].port, known: "known_hosts\(server)",
                                            options + ["-A", "127.0.0.1", "echo \"$QSSH_AUTH_SOCK\"; exec sleep 60"])
            p.environment = agentTools.env(["QSSH_AUTH_SOCK": s.socket])
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            p.standardInput = FileHandle.nullDevice
            try p.run()
            var text = ""
            while !text.contains("\n") {
                let d = out.fileHandleForReading.availableData
                if d.isEmpty { break }
                text += String(decoding: d, as: UTF8.self)
            }
            let path = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard path.hasPrefix("/") else {
                p.terminate()
                throw ToolTestError("no forwarded socket: '\(text)'")
            }
            return (p, path)
        }

        @Test("the forwarded socket and its directory go when the client vanishes (qssh killed) and when qsshd gets SIGTERM")
        func removedOnDisconnectAndTermination() throws {
            let s = try setUp(servers: 2)
            defer { s.stop() }
            let (killed, socket) = try lingeringSession(s, server: 0)
            #expect(FileManager.default.fileExists(atPath: socket))
            kill(killed.processIdentifier, SIGKILL)
            killed.waitUntilExit()
            // The server learns of the loss from the closed connection; nothing to wait on from here but the files.
            try agentTools.waitUntil("qsshd removes the socket of a vanished client") {
                !FileManager.default.fileExists(atPath: socket)
                    && !FileManager.default.fileExists(atPath: (socket as NSString).deletingLastPathComponent)
            }

            let (orphan, second) = try lingeringSession(s, server: 1)
            defer {
                orphan.terminate()
                orphan.waitUntilExit()
            }
            #expect(FileManager.default.fileExists(atPath: second))
            s.servers[1].stop()  // SIGTERM; the handler removes every forwarded socket before exiting
            #expect(!FileManager.default.fileExists(atPath: second))
            #expect(!FileManager.default.fileExists(atPath: (second as NSString).deletingLastPathComponent))
        }

        /// A throwaway account (root only) whose home is under `dir`.
        func makeAccount(_ dir: String, _ tag: String) throws -> String {
            let name = "qsa\(tag)\(getpid() % 100000)"
            let add = try Tools.run("/usr/sbin/useradd", ["-m", "-d", dir + "/home-" + name, "-s", "/bin/sh", name])
            guard add.status == 0 else { throw ToolTestError(add.stderr) }
            return name
        }

        @Test("as root, for another account: socket and directory belong to that account, which lists the key through it; a third account cannot connect",
              .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/useradd")
                  && FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser")))
        func ownedByTheSessionsAccount() throws {
            let s = try setUp(servers: 1)
            defer { s.stop() }
            chmod(s.dir, 0o755)  // the accounts' homes are below it (the laptop agent's socket stays 0600 and root's)
            let owner = try makeAccount(s.dir, "o")
            defer { _ = try? Tools.run("/usr/sbin/userdel", ["-r", owner]) }
            let stranger = try makeAccount(s.dir, "s")
            defer { _ = try? Tools.run("/usr/sbin/userdel", ["-r", stranger]) }
            let qsshAdd = try Tools.path("qssh-add")
            let r = try qssh(s, ["-A", "-l", owner, "127.0.0.1",
                "id -un; stat -c '%a %U' \"$QSSH_AUTH_SOCK\" \"$(dirname \"$QSSH_AUTH_SOCK\")\"; \(shellQuote(qsshAdd)) -l"])
            let lines = output(r).split(separator: "\n").map(String.init)
            #expect(r.status == 0 && lines.count == 4, "\(output(r)) \(r.stderr)")
            if lines.count == 4 {
                #expect(lines[0] == owner && lines[1] == "600 \(owner)" && lines[2] == "700 \(owner)", "\(lines)")
                #expect(lines[3].contains(s.fingerprint), "\(lines[3])")
            }
            // While a session of the owner lasts, the third account is kept out by the directory's mode.
            let (session, socket) = try lingeringSession(s, server: 0, options: ["-l", owner])
            defer {
                session.terminate()
                session.waitUntilExit()
            }
            let denied = try Tools.run("/usr/sbin/runuser", ["-u", stranger, "--", qsshAdd, "-l"],
                                       environment: agentTools.env(["QSSH_AUTH_SOCK": socket]))
            #expect(denied.status == 2 && denied.stderr.contains("ermission denied"), "\(denied.stderr)")
        }

        @Test("as root: the account renames its socket directory and puts a link to another directory holding a file agent.PID in its place; at the session's end that file stays, the link is left and logged",
              .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/useradd")
                  && FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser")))
        func renamedDirectoryIsNotFollowed() throws {
            let s = try setUp(servers: 1)
            defer { s.stop() }
            chmod(s.dir, 0o755)
            let owner = try makeAccount(s.dir, "r")
            defer { _ = try? Tools.run("/usr/sbin/userdel", ["-r", owner]) }
            let (session, socket) = try lingeringSession(s, server: 0, options: ["-l", owner])
            var ended = false
            defer {
                if !ended {
                    session.terminate()
                    session.waitUntilExit()
                }
            }
            let directory = (socket as NSString).deletingLastPathComponent
            let name = (socket as NSString).lastPathComponent
            let moved = directory + ".moved"
            defer {
                unlink(directory)
                try? FileManager.default.removeItem(atPath: moved)
            }
            // Another directory (root's) with a file named like the socket: what a followed path would remove.
            let decoy = s.dir + "/decoy"
            try FileManager.default.createDirectory(atPath: decoy, withIntermediateDirectories: false)
            #expect(FileManager.default.createFile(atPath: decoy + "/" + name, contents: Data("keep".utf8)))
            let swap = try Tools.run("/usr/sbin/runuser", ["-u", owner, "--", "/bin/sh", "-c",
                "mv \(shellQuote(directory)) \(shellQuote(moved)) && ln -s \(shellQuote(decoy)) \(shellQuote(directory))"])
            #expect(swap.status == 0, "\(swap.stderr)")
            // The connection's end stops the listener.
            session.terminate()
            session.waitUntilExit()
            ended = true
            #expect(s.servers[0].waitForLog("agent socket directory \(directory) no longer names the one made for the session"),
                    "\(s.servers[0].log)")
            #expect(FileManager.default.fileExists(atPath: decoy + "/" + name), "the file the link led to was removed")
            #expect((try? FileManager.default.contentsOfDirectory(atPath: decoy)) == [name])
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: directory)) == decoy)
            // The socket itself went, from the directory it was made in (now under its new name).
            #expect((try? FileManager.default.contentsOfDirectory(atPath: moved)) == [])
        }

        @Test("the cleanup removes through the directory's descriptor: a renamed directory loses its socket, and nothing at the old path (link, other directory, nothing) is touched")
        func cleanupOnPreparedLayouts() throws {
            let dir = try makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let fm = FileManager.default
            let socketName = "agent.\(Int.random(in: 1...99999))"
            let decoy = dir + "/decoy"
            try fm.createDirectory(atPath: decoy, withIntermediateDirectories: false)
            #expect(fm.createFile(atPath: decoy + "/" + socketName, contents: Data("keep".utf8)))

            /// Makes `dir/name` with a file standing for the socket and opens it as the listener does.
            func made(_ name: String) throws -> (String, Int32) {
                let path = dir + "/" + name
                try fm.createDirectory(atPath: path, withIntermediateDirectories: false)
                #expect(fm.createFile(atPath: path + "/" + socketName, contents: Data()))
                let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard fd >= 0 else { throw ToolTestError("open \(path): \(errno)") }
                return (path, fd)
            }

            // Untouched: socket and directory go.
            let (plain, plainFD) = try made("plain")
            #expect(AgentSocketListener.remove(socket: socketName, in: plain, directoryFD: plainFD) == .removed)
            close(plainFD)
            #expect(!fm.fileExists(atPath: plain))

            // Renamed, a link to the decoy in its place: the decoy's file stays, the link stays.
            let (linked, linkedFD) = try made("linked")
            try fm.moveItem(atPath: linked, toPath: linked + ".moved")
            try fm.createSymbolicLink(atPath: linked, withDestinationPath: decoy)
            #expect(AgentSocketListener.remove(socket: socketName, in: linked, directoryFD: linkedFD) == .directoryReplaced)
            close(linkedFD)
            #expect(fm.fileExists(atPath: decoy + "/" + socketName))
            #expect((try? fm.destinationOfSymbolicLink(atPath: linked)) == decoy)
            #expect((try? fm.contentsOfDirectory(atPath: linked + ".moved")) == [])

            // Renamed, another directory with a file of the socket's name in its place: both stay.
            let (other, otherFD) = try made("other")
            try fm.moveItem(atPath: other, toPath: other + ".moved")
            try fm.createDirectory(atPath: other, withIntermediateDirectories: false)
            #expect(fm.createFile(atPath: other + "/" + socketName, contents: Data("keep".utf8)))
            #expect(AgentSocketListener.remove(socket: socketName, in: other, directoryFD: otherFD) == .directoryReplaced)
            close(otherFD)
            #expect((try? fm.contentsOfDirectory(atPath: other)) == [socketName])
            #expect((try? fm.contentsOfDirectory(atPath: other + ".moved")) == [])

            // Renamed and nothing in its place; the socket already gone too: no error, nothing made.
            let (gone, goneFD) = try made("gone")
            try fm.removeItem(atPath: gone + "/" + socketName)
            try fm.moveItem(atPath: gone, toPath: gone + ".moved")
            #expect(AgentSocketListener.remove(socket: socketName, in: gone, directoryFD: goneFD) == .directoryReplaced)
            close(goneFD)
            #expect(!fm.fileExists(atPath: gone) && fm.fileExists(atPath: gone + ".moved"))
            #expect(fm.fileExists(atPath: decoy + "/" + socketName))
        }

        @Test("laptop → host1 → host2 → host3 with the key only in the laptop's agent (three qsshd); without -A the first hop has no agent and the next login fails")
        func hops() throws {
            let s = try setUp(servers: 3)
            defer { s.stop() }
            let third = try remoteQSSH(s, server: 2, ["127.0.0.1", "echo hop-ok"])
            let second = try remoteQSSH(s, server: 1, ["-A", "127.0.0.1", third])
            let r = try qssh(s, ["-A", "127.0.0.1", second])
            #expect(r.status == 0 && output(r) == "hop-ok\n", "\(output(r)) \(r.stderr)")
            // Each server accepted the laptop's key: host2 and host3 through forwarded agents.
            for server in s.servers {
                #expect(server.waitForLog("(\(s.fingerprint)) from"), "\(server.log)")
            }

            // Control: the same chain without -A on the first hop finds neither agent nor key file there.
            let plain = try qssh(s, ["127.0.0.1", second])
            #expect(plain.status != 0 && !output(plain).contains("hop-ok"), "\(output(plain))")
            #expect(plain.stderr.contains("No such file"), "\(plain.stderr)")
        }

        @Test("without -A (or with -a, ForwardAgent no) QSSH_AUTH_SOCK is unset on the server; -o ForwardAgent=yes and the config's ForwardAgent forward")
        func notForwardedUnlessAsked() throws {
            let s = try setUp(servers: 1)
            defer { s.stop() }
            let probe = "echo \"[${QSSH_AUTH_SOCK-unset}]\""
            #expect(output(try qssh(s, ["127.0.0.1", probe])) == "[unset]\n")
            #expect(output(try qssh(s, ["-A", "-a", "127.0.0.1", probe])) == "[unset]\n")
            #expect(output(try qssh(s, ["-o", "ForwardAgent=no", "127.0.0.1", probe])) == "[unset]\n")
            // -A with no local agent forwards nothing either (as ssh).
            let noAgent = try Tools.run(
                "qssh", try qsshArguments(s, port: s.servers[0].port, known: "known_hosts0", ["-A", "127.0.0.1", probe]),
                environment: agentTools.env([:]))
            #expect(output(noAgent) == "" && noAgent.status != 0, "\(noAgent.stderr)")  // and no key file: no login
            let set = "echo \"[${QSSH_AUTH_SOCK:+set}]\""
            #expect(output(try qssh(s, ["-o", "ForwardAgent=yes", "127.0.0.1", set])) == "[set]\n")
            #expect(output(try qssh(s, ["-a", "-A", "127.0.0.1", set])) == "[set]\n")
            let config = s.dir + "/config"
            try "Host 127.0.0.1\n  ForwardAgent yes\n".write(toFile: config, atomically: true, encoding: .utf8)
            chmod(config, 0o600)
            func withConfig(_ extra: [String]) throws -> String {
                var args = try qsshArguments(s, port: s.servers[0].port, known: "known_hosts0", extra)
                args[1] = config  // -F config instead of -F none
                return output(try Tools.run("qssh", args, environment: agentTools.env(["QSSH_AUTH_SOCK": s.socket])))
            }
            #expect(try withConfig(["127.0.0.1", set]) == "[set]\n")
            #expect(try withConfig(["-a", "127.0.0.1", probe]) == "[unset]\n")
            // A -R listener may not be bound to the reserved agent address (its channels would carry it).
            let reserved = try qssh(s, ["-o", "ExitOnForwardFailure=yes", "-R", "auth-agent@qssh:0:127.0.0.1:9", "127.0.0.1", "true"])
            #expect(reserved.status == 255 && reserved.stderr.contains("reserved for agent forwarding"), "\(reserved.stderr)")
            let bad = try qssh(s, ["-o", "ForwardAgent=maybe", "127.0.0.1", "true"])
            #expect(bad.status == 255 && bad.stderr.contains("ForwardAgent must be yes or no"), "\(bad.stderr)")
        }

        @Test("qsshd --no-agent-forwarding: qssh -A still gets its session, without a socket or QSSH_AUTH_SOCK, and the refusal is logged")
        func refusedByServer() throws {
            let s = try setUp(servers: 1, serverOptions: ["--no-agent-forwarding"])
            defer { s.stop() }
            let r = try qssh(s, ["-A", "127.0.0.1", "echo \"[${QSSH_AUTH_SOCK-unset}]\""])
            #expect(r.status == 0 && output(r) == "[unset]\n", "\(output(r)) \(r.stderr)")
            #expect(s.servers[0].waitForLog("refused agent forwarding: disabled on this server"), "\(s.servers[0].log)")
            let help = String(decoding: try Tools.run("qsshd", ["--help"]).stdout, as: UTF8.self)
            #expect(help.contains("--no-agent-forwarding"))
            let clientHelp = String(decoding: try Tools.run("qssh", ["--help"]).stdout, as: UTF8.self)
            #expect(clientHelp.contains("-A ") && clientHelp.contains("-a "), "\(clientHelp)")
        }

        @Test("a user certificate's no-agent-forwarding refuses qssh -A for that login (the session still runs); the same certificate without it forwards")
        func refusedByCertificate() throws {
            let user = ProcessInfo.processInfo.environment["USER"] ?? "root"
            let s = try setUp(servers: 1) { dir in
                try agentTools.keygen(dir + "/ca", comment: "ca")
                try agentTools.keygen(dir + "/stranger", comment: "stranger")
                // authorized_keys does not list the laptop's key: only its certificate lets it in.
                try FileManager.default.removeItem(atPath: dir + "/authorized_keys")
                try FileManager.default.copyItem(atPath: dir + "/stranger.pub", toPath: dir + "/authorized_keys")
                return ["--trusted-user-ca-keys", dir + "/ca.pub"]
            }
            defer { s.stop() }
            func certify(_ options: [String], serial: Int) throws {
                try? FileManager.default.removeItem(atPath: s.dir + "/id-cert.pub")
                let r = try Tools.run("qssh-keygen", [
                    "-q", "-s", s.dir + "/ca", "-I", "laptop-\(serial)", "-n", user, "-V", "-1m:+1h", "-z", "\(serial)",
                ] + options.flatMap { ["-O", $0] } + [s.dir + "/id.pub"])
                guard r.status == 0 else { throw ToolTestError(r.stderr) }
            }
            let probe = "echo \"[${QSSH_AUTH_SOCK:+set}]\""
            try certify(["no-agent-forwarding"], serial: 1)
            let refused = try qssh(s, ["-A", "127.0.0.1", probe])
            #expect(refused.status == 0 && output(refused) == "[]\n", "\(output(refused)) \(refused.stderr)")
            #expect(s.servers[0].waitForLog("refused agent forwarding: not permitted for this login"), "\(s.servers[0].log)")
            try certify([], serial: 2)
            let allowed = try qssh(s, ["-A", "127.0.0.1", probe])
            #expect(allowed.status == 0 && output(allowed) == "[set]\n", "\(output(allowed)) \(allowed.stderr)")
            #expect(s.servers[0].log.contains("serial 2"), "\(s.servers[0].log)")
        }
    }
}

/// The client's routing of server-opened channels (unit level): an agent channel reaches the
/// agent only when this client asked for forwarding.
@Suite("client channel routing")
struct ClientChannelRouteTests {
    func forwarded(_ host: String, port: Int) -> SSHChannelType {
        .forwardedTCPIP(.init(listeningHost: host, listeningPort: port, originatorAddress: ForwardingRelay.originator(nil)))
    }

    @Test("an agent channel to a client that did not ask is refused, with or without -R forwards; asked, it goes to the agent")
    func agentChannel() {
        for remote in [false, true] {
            for host in [AgentForwarding.channelHost, "AUTH-AGENT@QSSH", "Auth-Agent@qssh"] {
                guard case .refuse(let why) = ClientChannelRoute.decide(forwarded(host, port: 0), agentForwarding: false, remoteForwards: remote) else {
                    Issue.record("\(host) routed without agent forwarding (remote forwards: \(remote))")
                    continue
                }
                #expect(why.contains("agent forwarding was not requested"))
                // Never handed to the -R table either (a "-R 0" forward may be recorded under port 0).
                #expect(ClientChannelRoute.decide(forwarded(host, port: 0), agentForwarding: true, remoteForwards: remote) == .agent)
            }
        }
        #expect(ClientChannelRoute.decide(AgentForwarding.channelType, agentForwarding: false, remoteForwards: true) != .agent)
        #expect(ClientChannelRoute.decide(AgentForwarding.channelType, agentForwarding: true, remoteForwards: false) == .agent)
    }

    @Test("other channels: -R ports go to the -R table only when there is one; session and direct-tcpip opens are refused")
    func otherChannels() {
        for agent in [false, true] {
            #expect(ClientChannelRoute.decide(forwarded("localhost", port: 8080), agentForwarding: agent, remoteForwards: true) == .remoteForward(port: 8080))
            #expect(ClientChannelRoute.decide(forwarded("auth-agent@qssh.example", port: 1), agentForwarding: agent, remoteForwards: true) == .remoteForward(port: 1))
            if case .refuse = ClientChannelRoute.decide(forwarded("localhost", port: 8080), agentForwarding: agent, remoteForwards: false) {} else {
                Issue.record("a forwarded channel without -R was accepted")
            }
            if case .refuse = ClientChannelRoute.decide(.session, agentForwarding: agent, remoteForwards: true) {} else {
                Issue.record("a server-opened session channel was accepted")
            }
            let direct = SSHChannelType.directTCPIP(.init(targetHost: AgentForwarding.channelHost, targetPort: 0, originatorAddress: ForwardingRelay.originator(nil)))
            if case .refuse = ClientChannelRoute.decide(direct, agentForwarding: agent, remoteForwards: true) {} else {
                Issue.record("a server-opened direct-tcpip channel was accepted")
            }
        }
    }
}

extension ClientChannelRouteTests {
    @Test("randomized: only the reserved address (in any letter case) routes to the agent, and only when asked; every other host goes to -R or is refused")
    func randomizedHosts() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(UInt32.random(in: 0...UInt32.max))
        let seed = state
        func next() -> UInt64 {  // SplitMix64
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzAGENTQSH-@.:0123456789")
        let reserved = Array(AgentForwarding.channelHost)
        for _ in 0..<2000 {
            var host: [Character]
            switch next() % 3 {
            case 0:  // the reserved name with random letter case
                host = reserved.map { next() & 1 == 0 ? Character($0.uppercased()) : $0 }
            case 1:  // the reserved name with one character changed, added or removed
                host = reserved
                let i = Int(next() % UInt64(host.count))
                switch next() % 3 {
                case 0: host[i] = alphabet[Int(next() % UInt64(alphabet.count))]
                case 1: host.insert(alphabet[Int(next() % UInt64(alphabet.count))], at: i)
                default: host.remove(at: i)
                }
            default:
                host = (0..<Int(next() % 24)).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] }
            }
            let name = String(host)
            let port = Int(next() % 65536)
            let isReserved = name.lowercased() == AgentForwarding.channelHost
            let type = SSHChannelType.forwardedTCPIP(.init(listeningHost: name, listeningPort: port, originatorAddress: ForwardingRelay.originator(nil)))
            for agent in [false, true] {
                for remote in [false, true] {
                    let route = ClientChannelRoute.decide(type, agentForwarding: agent, remoteForwards: remote)
                    let expected: ClientChannelRoute? = isReserved ? (agent ? .agent : nil) : (remote ? .remoteForward(port: port) : nil)
                    if let expected {
                        #expect(route == expected, "seed \(seed): \(name):\(port) agent \(agent) remote \(remote)")
                    } else if case .refuse = route {
                    } else {
                        Issue.record("seed \(seed): \(name):\(port) agent \(agent) remote \(remote) routed to \(route)")
                    }
                }
            }
        }
    }
}

extension ClientChannelRouteTests {
    @Test("config files: qsshd's AllowAgentForwarding no is --no-agent-forwarding; qssh's ForwardAgent becomes -o ForwardAgent=")
    func configKeywords() throws {
        #expect(try QSSHDConfigFile.arguments(from: "AllowAgentForwarding no\n", path: "f") == ["--no-agent-forwarding"])
        #expect(try QSSHDConfigFile.arguments(from: "AllowAgentForwarding yes\n", path: "f") == [])
        #expect(throws: QSSHDConfigFile.ConfigError.self) { try QSSHDConfigFile.arguments(from: "AllowAgentForwarding maybe\n", path: "f") }
        #expect(try QSSHClientConfig.arguments(from: "Host h\n ForwardAgent yes\n", path: "c", host: "h") == ["-o", "ForwardAgent=yes"])
        #expect(try QSSHClientConfig.arguments(from: "Host other\n ForwardAgent yes\n", path: "c", host: "h") == [])
    }
}
