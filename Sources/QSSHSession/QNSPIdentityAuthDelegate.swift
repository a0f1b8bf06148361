import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOSSH

/// Inner SSH user authentication bound to the identity QNSP already proved: the
/// `none` method succeeds for exactly the user name the QNSP handshake
/// authenticated with an ML-DSA-65 signature, and everything else fails.
///
/// The SSH handler is installed before the QNSP handshake ends (so no byte can arrive
/// before it); the user name is filled in when the handshake succeeds, and until then
/// every request fails.
public final class QNSPIdentityAuthDelegate: NIOSSHServerUserAuthenticationDelegate, Sendable {
    private let account = NIOLockedValueBox<SessionUser?>(nil)

    public init() {}

    /// Records the account the QNSP handshake authenticated (looked up when it was authorized).
    public func setAuthenticated(_ user: SessionUser) { account.withLockedValue { $0 = user } }

    /// The user the QNSP handshake authenticated, once it has.
    public var authenticatedUser: String? { account.withLockedValue { $0?.name } }

    /// The account sessions run as, once the handshake has authenticated it.
    public var authenticatedAccount: SessionUser? { account.withLockedValue { $0 } }

    public var supportedAuthenticationMethods: NIOSSHAvailableUserAuthenticationMethods { .publicKey }

    public func requestReceived(
        request: NIOSSHUserAuthenticationRequest, responsePromise: EventLoopPromise<NIOSSHUserAuthenticationOutcome>
    ) {
        guard case .none = request.request, let authenticated = authenticatedUser, request.username == authenticated else {
            responsePromise.succeed(.failure)
            return
        }
        responsePromise.succeed(.success)
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
    /// The server-authentication delegate to install with this one (it records the host key).
    public let hostKeys = TunnelHostKeyDelegate()

    /// - Parameters:
    ///   - classicalKeys: keys for a classical server behind a bridge, with names for messages;
    ///     each is loaded (a passphrase asked for, off the event loop) only when the server wants a key.
    ///   - classicalHostKeyCheck: applied to the server's host key when it turns out to be a
    ///     classical server (it refused `none`), before any key is offered.
    public init(username: String, classicalKeys: [(name: String, load: @Sendable () -> NIOSSHPrivateKey?)] = [],
                classicalHostKeyCheck: TunnelHostKeyDelegate.Check? = nil) {
        self.username = username
        self.keys = classicalKeys
        self.classicalHostKeyCheck = classicalHostKeyCheck
    }

    /// Names of the classical keys offered so far (empty when `none` sufficed).
    public var offeredKeys: [String] { tried.withLockedValue { $0 } }

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
