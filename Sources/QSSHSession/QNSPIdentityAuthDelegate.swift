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
    private let user = NIOLockedValueBox<String?>(nil)

    public init() {}

    /// Records the user the QNSP handshake authenticated.
    public func setAuthenticatedUser(_ name: String) { user.withLockedValue { $0 = name } }

    /// The user the QNSP handshake authenticated, once it has.
    public var authenticatedUser: String? { user.withLockedValue { $0 } }

    public var supportedAuthenticationMethods: NIOSSHAvailableUserAuthenticationMethods { .publicKey }

    public func requestReceived(
        request: NIOSSHUserAuthenticationRequest, responsePromise: EventLoopPromise<NIOSSHUserAuthenticationOutcome>
    ) {
        guard case .none = request.request, let authenticated = user.withLockedValue({ $0 }), request.username == authenticated else {
            responsePromise.succeed(.failure)
            return
        }
        responsePromise.succeed(.success)
    }
}

/// Client side of `QNSPIdentityAuthDelegate`: offers `none` for the QNSP user name, once.
public final class QNSPIdentityClientAuthDelegate: NIOSSHClientUserAuthenticationDelegate, @unchecked Sendable {
    private let username: String
    private var offered = false

    public init(username: String) { self.username = username }

    public func nextAuthenticationType(
        availableMethods: NIOSSHAvailableUserAuthenticationMethods,
        nextChallengePromise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>
    ) {
        guard !offered else {
            nextChallengePromise.succeed(nil)
            return
        }
        offered = true
        nextChallengePromise.succeed(NIOSSHUserAuthenticationOffer(username: username, serviceName: "ssh-connection", offer: .none))
    }
}

/// Accepts the inner SSH host key: the server was already authenticated by QNSP's KEM
/// handshake, and the inner key only names the endpoint of this same tunnel.
public final class TunnelHostKeyDelegate: NIOSSHClientServerAuthenticationDelegate, Sendable {
    public init() {}
    public func validateHostKey(hostKey: NIOSSHPublicKey, validationCompletePromise: EventLoopPromise<Void>) {
        validationCompletePromise.succeed(())
    }
}
