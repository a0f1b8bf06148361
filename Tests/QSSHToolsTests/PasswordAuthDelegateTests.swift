import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSH
import QSSHSession
import Testing

/// The server's inner SSH user authentication in password mode (docs/protocol.md §7.10),
/// driven directly: which requests reach the password check, and when the connection is given up.
@Suite("Password login: inner SSH authentication delegate")
struct PasswordAuthDelegateTests {
    let group = MultiThreadedEventLoopGroup.singleton

    final class Checks: Sendable {
        let passwords = NIOLockedValueBox<[String]>([])
        let gaveUp = NIOLockedValueBox(0)
    }

    func delegate(_ checks: Checks, right: String = "right", user: String = "alice") -> QNSPIdentityAuthDelegate {
        let auth = QNSPIdentityAuthDelegate()
        let account = SessionUser(name: user, uid: 1000, gid: 1000, home: "/home/" + user, shell: "/bin/sh", groups: [1000])
        auth.allowPassword(PasswordLogin(username: user, verify: { password, loop in
            checks.passwords.withLockedValue { $0.append(password) }
            return loop.makeSucceededFuture(password == right ? account : nil)
        }, onGiveUp: { checks.gaveUp.withLockedValue { $0 += 1 } }))
        return auth
    }

    /// Whether the delegate accepts the request.
    func ask(_ auth: QNSPIdentityAuthDelegate, _ user: String, _ request: NIOSSHUserAuthenticationRequest.Request) throws -> Bool {
        let promise = group.next().makePromise(of: NIOSSHUserAuthenticationOutcome.self)
        auth.requestReceived(request: .init(username: user, serviceName: "ssh-connection", request: request), responsePromise: promise)
        switch try promise.futureResult.wait() {
        case .success: return true
        default: return false
        }
    }

    @Test("only password is offered; none and other user names fail without a check; the right password logs in the account")
    func accepts() throws {
        let checks = Checks()
        let auth = delegate(checks)
        #expect(auth.supportedAuthenticationMethods == .password)
        #expect(try ask(auth, "alice", .none) == false)
        #expect(try ask(auth, "mallory", .password(.init(password: "right"))) == false)
        #expect(checks.passwords.withLockedValue { $0 }.isEmpty)
        #expect(try ask(auth, "alice", .password(.init(password: "right"))) == true)
        #expect(auth.authenticatedAccount?.name == "alice")
        #expect(auth.supportedAuthenticationMethods == .publicKey)
        // Logged in: a further password is not checked again.
        #expect(try ask(auth, "alice", .password(.init(password: "right"))) == false)
        #expect(checks.passwords.withLockedValue { $0 } == ["right"])
    }

    @Test("three passwords per connection; a fourth request is not checked and gives the connection up")
    func attemptLimit() throws {
        let checks = Checks()
        let auth = delegate(checks)
        for attempt in 1...3 {
            #expect(try ask(auth, "alice", .password(.init(password: "wrong\(attempt)"))) == false)
        }
        #expect(checks.gaveUp.withLockedValue { $0 } == 0)
        #expect(try ask(auth, "alice", .password(.init(password: "right"))) == false)
        #expect(checks.passwords.withLockedValue { $0 } == ["wrong1", "wrong2", "wrong3"])
        #expect(checks.gaveUp.withLockedValue { $0 } == 1)
        #expect(auth.authenticatedAccount == nil)
    }

    @Test("without password login (the key path) a password is never checked")
    func keyPathOnly() throws {
        let auth = QNSPIdentityAuthDelegate()
        #expect(auth.supportedAuthenticationMethods == .publicKey)
        #expect(try ask(auth, "alice", .password(.init(password: "anything"))) == false)
        auth.setAuthenticated(SessionUser(name: "alice", uid: 1000, gid: 1000, home: "/", shell: "/bin/sh", groups: [1000]))
        #expect(try ask(auth, "alice", .none) == true)
        #expect(try ask(auth, "alice", .password(.init(password: "anything"))) == false)
    }
}
