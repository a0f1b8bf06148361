import CQSSHAgentPosix
import Foundation
import QNSP
import QNSPCrypto
import QSSHAgent
import Testing

@testable import QSSHTools

/// A clock the test moves by hand.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var seconds: UInt64 = 5_000
    var now: UInt64 { lock.withLock { seconds } }
    func advance(_ by: UInt64) { lock.withLock { seconds += by } }
}

@Suite("Agent server on a Unix socket", .serialized)
struct AgentServerTests {
    struct Running {
        let dir: String
        let server: AgentServer
        let client: AgentClient
        var path: String { client.socketPath }
        func stop() {
            server.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    func start(_ edit: (inout AgentServer.Configuration) -> Void = { _ in }) throws -> Running {
        let dir = try makeAgentTempDir()
        var configuration = AgentServer.Configuration(socketPath: dir + "/agent.sock")
        configuration.unlockPenalty = 0
        edit(&configuration)
        let server = try AgentServer(configuration: configuration)
        return Running(dir: dir, server: server, client: AgentClient(socketPath: configuration.socketPath))
    }

    func sign(_ client: AgentClient, _ pair: UserKeyPair) throws -> [UInt8] {
        let input = AgentKeys.input(for: pair)
        return try client.sign(key: pair.publicKey, message: input.message, context: KeySchedule.clientAuthContext)
    }

    @Test("the socket is 0600, keys added over it sign, and stop() removes it")
    func basics() throws {
        let agent = try start()
        defer { agent.stop() }
        var st = stat()
        #expect(lstat(agent.path, &st) == 0)
        #expect(st.st_mode & S_IFMT == S_IFSOCK)
        #expect(st.st_mode & 0o777 == 0o600)
        try agent.client.add(AgentKeys.alice, constraints: AgentConstraints())
        let held = try agent.client.identities()
        #expect(held.map(\.key) == [AgentKeys.alice.publicKey])
        let input = AgentKeys.input(for: AgentKeys.alice)
        let sig = try sign(agent.client, AgentKeys.alice)
        #expect(
            AgentKeys.alice.publicKey.signing.isValidSignature(
                sig,
                for: input.message,
                context: KeySchedule.clientAuthContext
            )
        )
        // The signer that qssh uses verifies what it gets.
        let signer = AgentSigner(agent: agent.client, publicKey: AgentKeys.alice.publicKey)
        #expect(throws: Never.self) { try signer.sign(input.message, context: KeySchedule.clientAuthContext) }
        #expect(throws: QNSPCryptoError.self) { try signer.sign(input.message, context: Array("another context".utf8)) }
        agent.server.stop()
        #expect(!FileManager.default.fileExists(atPath: agent.path))
        #expect(throws: AgentError.self) { try agent.client.identities() }
    }

    @Test("a key added with a lifetime is gone once the (test) clock passes it")
    func lifetime() throws {
        let clock = TestClock()
        let agent = try start { $0.clock = { clock.now } }
        defer { agent.stop() }
        try agent.client.add(AgentKeys.alice, constraints: AgentConstraints(lifetime: 60))
        try agent.client.add(AgentKeys.bob, constraints: AgentConstraints())
        clock.advance(59)
        #expect(try agent.client.identities().count == 2)
        #expect(throws: Never.self) { try sign(agent.client, AgentKeys.alice) }
        clock.advance(1)
        #expect(try agent.client.identities().map(\.key) == [AgentKeys.bob.publicKey])
        #expect(throws: AgentError.refused) { try sign(agent.client, AgentKeys.alice) }
    }

    @Test("a confirm key asks SSH_ASKPASS: a no refuses, a yes signs", arguments: [false, true])
    func confirm(_ yes: Bool) throws {
        let dir = try makeAgentTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = dir + "/askpass"
        let asked = dir + "/asked"
        try "#!/bin/sh\nprintf '%s|%s' \"$SSH_ASKPASS_PROMPT\" \"$1\" > '\(asked)'\nexit \(yes ? 0 : 1)\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o700)
        let env = ["SSH_ASKPASS": script, "PATH": "/usr/bin:/bin"]
        let agent = try start { $0.confirm = { AskpassConfirmation.ask($0.prompt, environment: env) } }
        defer { agent.stop() }
        try agent.client.add(AgentKeys.alice, constraints: AgentConstraints(confirm: true))
        if yes {
            #expect(throws: Never.self) { try sign(agent.client, AgentKeys.alice) }
        } else {
            #expect(throws: AgentError.refused) { try sign(agent.client, AgentKeys.alice) }
        }
        let question = try String(contentsOfFile: asked, encoding: .utf8)
        #expect(question.hasPrefix("confirm|Allow use of key alice@laptop?"))
        #expect(question.contains(AgentKeys.alice.publicKey.fingerprint))
    }

    @Test("without SSH_ASKPASS a confirm key signs nothing")
    func confirmWithoutAskpass() {
        #expect(!AskpassConfirmation.ask("Allow?", environment: ["PATH": "/usr/bin:/bin"]))
        #expect(!AskpassConfirmation.ask("Allow?", environment: ["SSH_ASKPASS": "/nonexistent/askpass"]))
    }

    @Test("a locked agent signs nothing and lists nothing until unlocked with the right password")
    func lock() throws {
        let agent = try start()
        defer { agent.stop() }
        try agent.client.add(AgentKeys.alice, constraints: AgentConstraints())
        try agent.client.perform(.lock(passphrase: Array("pw".utf8)))
        #expect(try agent.client.identities().isEmpty)
        #expect(throws: AgentError.refused) { try sign(agent.client, AgentKeys.alice) }
        #expect(throws: AgentError.refused) { try agent.client.perform(.unlock(passphrase: Array("pW".utf8))) }
        try agent.client.perform(.unlock(passphrase: Array("pw".utf8)))
        #expect(throws: Never.self) { try sign(agent.client, AgentKeys.alice) }
    }

    @Test("a peer of another uid is disconnected before any request is read")
    func otherUID() throws {
        let logged = LogBox()
        let agent = try start {
            $0.peerUID = { _ in 4242 }
            $0.ownUID = 1000
            $0.log = { logged.append($0) }
        }
        defer { agent.stop() }
        #expect(throws: AgentError.self) { try agent.client.identities() }
        #expect(logged.text.contains("refused a connection from uid 4242"))
    }

    @Test("SO_PEERCRED reports our own uid on a real connection")
    func peerCredentials() throws {
        let uids = LogBox()
        let agent = try start {
            $0.peerUID = { fd in
                let uid = AgentServer.socketPeerUID(fd)
                uids.append(uid.map(String.init) ?? "nil")
                return uid
            }
        }
        defer { agent.stop() }
        #expect(try agent.client.identities().isEmpty)
        #expect(uids.text == String(getuid()))
    }

    @Test("a malformed request gets a failure and the connection stays usable")
    func malformed() throws {
        let agent = try start()
        defer { agent.stop() }
        var c = try AgentConnection.connect(path: agent.path)
        defer { c.close() }
        try c.send([13, 0, 0, 0, 99])
        #expect(try c.receive() == [5])
        #expect(try c.roundTrip(.requestIdentities) == .identities([]))
    }

    @Test("core dumps are off after hardening")
    func hardening() {
        // Run in a child so the test process stays debuggable.
        let pid = fork()
        if pid == 0 {
            var limit = rlimit()
            let ok =
                qssh_agent_harden_process() == 0 && getrlimit(Int32(RLIMIT_CORE.rawValue), &limit) == 0
                && limit.rlim_cur == 0
            _exit(ok ? 0 : 1)
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(status == 0)
    }
}

final class LogBox: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ s: String) { lock.withLock { lines.append(s) } }
    var text: String { lock.withLock { lines.joined(separator: "\n") } }
}
