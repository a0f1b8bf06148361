import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOSSH

/// Inner SSH user authentication bound to the identity QNSP already proved: the
/// `none` method succeeds for exactly the user name the QNSP handshake
/// authenticated with an ML-DSA-65 signature, and everything else fails.
///
/// With password login (docs/protocol.md §7.10) a connection whose QNSP handshake succeeded
/// without an authorized key may instead log in with the `password` method, for the same user
/// name only, checked by the server's ``PasswordLogin`` (PAM for qsshd), at most
/// `PasswordLogin.maxAttempts` times.
///
/// The SSH handler is installed before the QNSP handshake ends (so no byte can arrive
/// before it); the user name is filled in when the handshake succeeds, and until then
/// every request fails.
public final class QNSPIdentityAuthDelegate: NIOSSHServerUserAuthenticationDelegate, Sendable {
    private struct State {
        var account: SessionUser?
        var password: PasswordLogin?
        var attempts = 0
        var checking = false
    }
    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Records the account the QNSP handshake authenticated (looked up when it was authorized).
    public func setAuthenticated(_ user: SessionUser) { state.withLockedValue { $0.account = user; $0.password = nil } }

    /// Lets this connection log in with a password instead (its QNSP key was not authorized).
    public func allowPassword(_ login: PasswordLogin) { state.withLockedValue { $0.password = login } }

    /// The user the QNSP handshake authenticated, once it has.
    public var authenticatedUser: String? { state.withLockedValue { $0.account?.name } }

    /// The account sessions run as, once the handshake has authenticated it.
    public var authenticatedAccount: SessionUser? { state.withLockedValue { $0.account } }

    public var supportedAuthenticationMethods: NIOSSHAvailableUserAuthenticationMethods {
        state.withLockedValue { $0.password != nil && $0.account == nil ? .password : .publicKey }
    }

    public func requestReceived(
        request: NIOSSHUserAuthenticationRequest, responsePromise: EventLoopPromise<NIOSSHUserAuthenticationOutcome>
    ) {
        switch request.request {
        case .none:
            guard let authenticated = authenticatedUser, request.username == authenticated else {
                responsePromise.succeed(.failure)
                return
            }
            responsePromise.succeed(.success)
        case .password(let offered):
            checkPassword(offered.password, user: request.username, responsePromise: responsePromise)
        default:
            responsePromise.succeed(.failure)
        }
    }

    private func checkPassword(
        _ password: String, user: String, responsePromise: EventLoopPromise<NIOSSHUserAuthenticationOutcome>
    ) {
        let (login, exhausted) = state.withLockedValue { s -> (PasswordLogin?, PasswordLogin?) in
            // One check at a time, for the QNSP user name only, within the attempt limit.
            guard s.account == nil, let login = s.password, login.username == user, !s.checking else { return (nil, nil) }
            guard s.attempts < login.maxAttempts else { return (nil, login) }
            s.attempts += 1
            s.checking = true
            return (login, nil)
        }
        guard let login else {
            responsePromise.succeed(.failure)
            // A request beyond the limit: the client did not give up by itself.
            exhausted?.onGiveUp()
            return
        }
        login.verify(password, responsePromise.futureResult.eventLoop).whenComplete { result in
            let outcome = self.state.withLockedValue { s -> NIOSSHUserAuthenticationOutcome in
                s.checking = false
                guard case .success(let account?) = result else { return .failure }
                s.account = account
                s.password = nil
                return .success
            }
            responsePromise.succeed(outcome)
        }
    }
}

/// Client side of `QNSPIdentityAuthDelegate`: offers `none` for the QNSP user name first.
/// When the server wants more (a stock sshd behind a qsshd bridge), offers each classical
/// key in turn with `publickey`, and records what it tried for the error message.
public final class QNSPIdentityClientAuthDelegate: NIOSSHClientUserAuthenticationDelegate, @unchecked Sendable {
    private let username: String
    private var offeredNone = false
    private var keys: [(name: String, load: @Sendable () -> NIOSSHPrivateKey?)]
    private let tried = NIOLockedValueBox<[String]>([])

    private let classicalHostKeyCheck: TunnelHostKeyDelegate.Check?
    private var checkedHostKey = false
    /// Asks the user for a password (docs/protocol.md §7.10); nil: never send one.
    private let askPassword: (@Sendable (_ attempt: Int) -> String?)?
    private var passwordAttempts = 0
    /// How many password prompts at most (OpenSSH's NumberOfPasswordPrompts).
    public static let passwordPrompts = 3
    /// The server-authentication delegate to install with this one (it records the host key).
    public let hostKeys = TunnelHostKeyDelegate()

    /// - Parameters:
    ///   - classicalKeys: keys for a classical server behind a bridge, with names for messages;
    ///     each is loaded (a passphrase asked for, off the event loop) only when the server wants a key.
    ///   - classicalHostKeyCheck: applied to the server's host key when it turns out to be a
    ///     classical server (it refused `none`), before any key is offered.
    ///   - askPassword: when the server offers `password` after the keys (qsshd's password login,
    ///     or a bridged sshd), asks for one (off the event loop; attempt 1, 2, ...); nil answers
    ///     stop asking. Without it no password is ever sent.
    public init(username: String, classicalKeys: [(name: String, load: @Sendable () -> NIOSSHPrivateKey?)] = [],
                classicalHostKeyCheck: TunnelHostKeyDelegate.Check? = nil,
                askPassword: (@Sendable (_ attempt: Int) -> String?)? = nil) {
        self.username = username
        self.keys = classicalKeys
        self.classicalHostKeyCheck = classicalHostKeyCheck
        self.askPassword = askPassword
    }

    /// Password prompts answered so far.
    public var passwordsOffered: Int { tried.withLockedValue { $0.filter { $0 == "password" }.count } }

    /// Names of the classical keys offered so far (empty when `none` sufficed).
    public var offeredKeys: [String] { tried.withLockedValue { $0.filter { $0 != "password" } } }

    public func nextAuthenticationType(
        availableMethods: NIOSSHAvailableUserAuthenticationMethods,
        nextChallengePromise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>
    ) {
        if !offeredNone {
            offeredNone = true
            nextChallengePromise.succeed(NIOSSHUserAuthenticationOffer(username: username, serviceName: "ssh-connection", offer: .none))
            return
        }
        // `none` was refused: a classical server (behind a bridge). Check its host key first.
        if !checkedHostKey {
            checkedHostKey = true
            if let check = classicalHostKeyCheck, let key = hostKeys.presented, let why = check(key) {
                nextChallengePromise.fail(SSHSessionError.innerHostKeyRefused(why))
                return
            }
        }
        guard availableMethods.contains(.publicKey), !keys.isEmpty else {
            // Keys first; then a password, when the server offers it and the user may be asked.
            if availableMethods.contains(.password), let askPassword, passwordAttempts < Self.passwordPrompts {
                passwordAttempts += 1
                let attempt = passwordAttempts, username = self.username, tried = self.tried
                DispatchQueue.global().async {
                    guard let password = askPassword(attempt) else {
                        // No answer (no terminal, no SSH_ASKPASS, or cancelled): the refusal says why.
                        let keysTried = tried.withLockedValue { $0.filter { $0 != "password" } }
                        nextChallengePromise.fail(
                            attempt > 1 || availableMethods == .password
                                ? SSHSessionError.passwordRefused(attempts: attempt - 1)
                                : SSHSessionError.authenticationFailed(tried: keysTried))
                        return
                    }
                    tried.withLockedValue { $0.append("password") }
                    nextChallengePromise.succeed(NIOSSHUserAuthenticationOffer(
                        username: username, serviceName: "ssh-connection", offer: .password(.init(password: password))))
                }
                return
            }
            if passwordAttempts > 0 || availableMethods == .password {
                nextChallengePromise.fail(SSHSessionError.passwordRefused(attempts: passwordAttempts))
                return
            }
            // Failing (not answering nil, which swift-nio-ssh 0.15.1 leaves hanging) closes the connection with a reason.
            nextChallengePromise.fail(SSHSessionError.authenticationFailed(tried: offeredKeys))
            return
        }
        let next = keys.removeFirst()
        let username = self.username, tried = self.tried
        // Reading a key may ask for a passphrase: not on the event loop (keepalives must go on).
        DispatchQueue.global().async {
            guard let key = next.load() else {
                // Unreadable or not unlocked (the loader said why): let the server ask again.
                nextChallengePromise.succeed(NIOSSHUserAuthenticationOffer(username: username, serviceName: "ssh-connection", offer: .none))
                return
            }
            tried.withLockedValue { $0.append(next.name) }
            nextChallengePromise.succeed(NIOSSHUserAuthenticationOffer(
                username: username, serviceName: "ssh-connection", offer: .privateKey(.init(privateKey: key))))
        }
    }
}

/// Checks the inner SSH host key. The server was already authenticated by QNSP's KEM
/// handshake; qsshd's own inner key only names the endpoint of this tunnel and is accepted.
/// The key presented is recorded, so that a classical server behind a bridge (detected when
/// it refuses `none`) can be checked against OpenSSH known_hosts before any key is offered.
public final class TunnelHostKeyDelegate: NIOSSHClientServerAuthenticationDelegate, Sendable {
    /// Why a key must be refused (nil accepts it).
    public typealias Check = @Sendable (NIOSSHPublicKey) -> String?
    private let check: Check?
    private let recorded = NIOLockedValueBox<NIOSSHPublicKey?>(nil)

    /// - Parameter check: applied at once to every key (nil: accept, record only).
    public init(check: Check? = nil) { self.check = check }

    /// The key the server presented, once the key exchange got that far.
    public var presented: NIOSSHPublicKey? { recorded.withLockedValue { $0 } }

    public func validateHostKey(hostKey: NIOSSHPublicKey, validationCompletePromise: EventLoopPromise<Void>) {
        recorded.withLockedValue { $0 = hostKey }
        if let why = check?(hostKey) {
            validationCompletePromise.fail(SSHSessionError.innerHostKeyRefused(why))
        } else {
            validationCompletePromise.succeed(())
        }
    }
}
