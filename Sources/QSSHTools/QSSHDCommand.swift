import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSH
import QNSP
import QNSPCrypto
import QNSPNIO
import QSSHSession

/// `qsshd`: the server. Accepts QNSP connections, authenticates users by their ML-DSA-65
/// keys, and serves SSH-2 sessions (exec, shell) inside the tunnel.
public struct QSSHDCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "qsshd",
        abstract: "Post-quantum SSH server: SSH-2 sessions inside a QNSP tunnel.",
        discussion: """
            qsshd listens for QNSP connections (X-Wing key exchange, ML-DSA-65 user keys). A user logs in
            when the QNSP handshake proves a key listed in the authorized_keys file; the SSH-2 session
            inside the tunnel is then bound to that identity (no second authentication).

            Current limits (work in progress): sessions run as the account qsshd runs as, so only that
            user can log in; no PTY sessions yet (exec and a shell without a terminal work); runs in
            the foreground.

            Example:
              qssh-keygen -t host -f ~/.qssh/host_key -N ''
              qsshd -p 22222 -h ~/.qssh/host_key
            """)

    @Option(name: .customShort("p"), help: "Port to listen on (0 picks a free port, printed on stderr).")
    var port: Int = 22222

    @Option(name: .customShort("l"), help: "Address to listen on.")
    var listen: String = "0.0.0.0"

    @Option(name: .customShort("h"), help: "Host key file (from 'qssh-keygen -t host').")
    var hostKey: String = NSHomeDirectory() + "/.qssh/host_key"

    @Option(name: .long, help: "authorized_keys file (default: ~/.qssh/authorized_keys).")
    var authorizedKeys: String = NSHomeDirectory() + "/.qssh/authorized_keys"

    @Option(name: .long, help: "Ping a silent client after this many seconds (0 = off).")
    var keepalive: Int64 = 30

    @Option(name: .long, help: "Drop a client after this many unanswered keepalive intervals.")
    var keepaliveMax: Int = 3

    @Option(name: .long, help: "Most connections at once; more are closed at once (logged with -v).")
    var maxConnections: Int = 100

    @Option(name: .long, help: "Seconds a client has to finish the handshake (login grace time).")
    var loginGraceTime: Int64 = 30

    @Option(name: .long, help: "Append a hash-chained JSON line per connect, auth success/failure, exec and disconnect.")
    var auditLog: String?

    @Option(name: .long, help: "Check the hash chain of an audit log, print the result and exit.")
    var verifyAudit: String?

    @Flag(name: .customShort("D"), help: "Stay in the foreground (the only mode so far).")
    var foreground = false

    @Flag(name: .shortAndLong, help: "Log connections to stderr.")
    var verbose = false

    public init() {}

    public func run() throws {
        if let path = verifyAudit {
            do {
                let (count, chain) = try AuditLog.verify(path: path)
                print("\(path): \(count) records, hash chain intact; last link \(chain)")
                return
            } catch let e as AuditLog.AuditError {
                throw ToolError("\(path): \(e)")
            }
        }
        let audit = try auditLog.map { path in
            do { return try AuditLog(path: path) } catch { throw ToolError("\(path): \(error)") }
        }
        guard let account = SessionUser.current() else { throw ToolError("cannot look up the account qsshd runs as") }
        let text = try KeyFileIO.readPrivateKey(path: hostKey)
        guard case .host(let host) = try PrivateKeyFile.decode(text) else { throw ToolError("\(hostKey) is not a host key") }
        _ = try AuthorizedKeys.load(path: authorizedKeys)  // fail early on a missing or unreadable file
        let keysPath = authorizedKeys
        let params = QNSPConnection.ServerParameters(hostKeys: [host]) { user, key in
            guard user == account.name else {
                return .reject("qsshd runs as '\(account.name)' and cannot start sessions for '\(user)'")
            }
            // Re-read for every login, as sshd does, so edits take effect at once.
            guard let keys = try? AuthorizedKeys.load(path: keysPath), keys.contains(key) else {
                return .reject("key \(key.fingerprint) is not authorized for '\(user)'")
            }
            return .accept
        }
        // The inner SSH host key only names this end of an already authenticated tunnel.
        let sshHostKey = NIOSSHPrivateKey(ed25519Key: .init())
        let verbose = self.verbose
        let sessionLog: (@Sendable (String) -> Void)? = verbose ? { @Sendable message in Terminal.warn("qsshd: " + message) } : nil
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let server: Channel
        do {
            var options = QNSPBootstrap.Options()
            if keepalive > 0 { options.keepalive = .init(interval: .seconds(keepalive), maxMissed: max(1, keepaliveMax)) }
            if loginGraceTime > 0 { options.handshakeTimeout = .seconds(loginGraceTime) }
            let active = NIOLockedValueBox(0)
            let limit = max(1, maxConnections)
            server = try QNSPBootstrap.bindServer(group: group, host: listen, port: port, parameters: params, options: options) { channel, handshake in
                let admitted = active.withLockedValue { count in
                    guard count < limit else { return false }
                    count += 1
                    return true
                }
                guard admitted else {
                    sessionLog?("refused \(channel.remoteAddress?.description ?? "?"): \(limit) connections already open (--max-connections)")
                    return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
                }
                let peer = channel.remoteAddress?.description ?? "?"
                audit?.record("connect", peer: peer)
                let who = NIOLockedValueBox<(String, String)?>(nil)
                channel.closeFuture.whenComplete { _ in
                    active.withLockedValue { $0 -= 1 }
                    let w = who.withLockedValue { $0 }
                    audit?.record("disconnect", peer: peer, user: w?.0, key: w?.1)
                }
                return channel.eventLoop.makeCompletedFuture {
                    // Installed now, not when the handshake ends: bytes must never reach a pipeline without it.
                    let auth = try SSHSessionServer.install(
                        on: channel, sessionUser: account, hostKey: sshHostKey,
                        log: sessionLog.map { log in { @Sendable message in log("closing connection from \(peer): \(message)") } },
                        onSessionStart: { what in
                            let w = who.withLockedValue { $0 }
                            audit?.record("exec", peer: peer, user: w?.0, key: w?.1, detail: what)
                        })
                    handshake.whenComplete { result in
                        switch result {
                        case .success(let info):
                            auth.setAuthenticatedUser(info.username)
                            who.withLockedValue { $0 = (info.username, info.userKeyFingerprint) }
                            audit?.record("auth-success", peer: peer, user: info.username, key: info.userKeyFingerprint)
                            sessionLog?("accepted \(info.username) (\(info.userKeyFingerprint)) from \(channel.remoteAddress?.description ?? "?")")
                        case .failure(let error):
                            audit?.record("auth-failure", peer: peer, detail: "\(error)")
                            sessionLog?("connection from \(channel.remoteAddress?.description ?? "?") failed: \(error)")
                        }
                    }
                }
            }.wait()
        } catch {
            throw ToolError("cannot listen on \(listen) port \(port): \(ConnectErrorText.describe(error))")
        }
        Terminal.warn("qsshd: listening on \(listen):\(server.localAddress?.port ?? port) (host key \(host.publicKey.fingerprint))")
        try server.closeFuture.wait()
    }
}
