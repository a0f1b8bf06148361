/// One login in progress on the server, between KE2 and KE3 (RFC 9807 AuthServerFinalize). Single use.
package struct OPAQUEServerLogin: Sendable {
    private enum State: Sendable {
        case awaitingKE3(expectedClientMAC: SecretBytes, sessionKey: SecretBytes, isFake: Bool)
        case finished
    }

    private var state: State

    init(expectedClientMAC: SecretBytes, sessionKey: SecretBytes, isFake: Bool) {
        state = .awaitingKE3(expectedClientMAC: expectedClientMAC, sessionKey: sessionKey, isFake: isFake)
    }

    /// Checks the client's MAC in constant time and returns the session key. A login against a fake
    /// record is refused even if the MAC were to match; both refusals are ``OPAQUEError/clientAuthenticationFailed``.
    package mutating func finish(ke3: KE3) throws(OPAQUEError) -> SecretBytes {
        guard case .awaitingKE3(let expectedClientMAC, let sessionKey, let isFake) = state else {
            preconditionFailure("OPAQUEServerLogin.finish called twice")
        }
        state = .finished
        let matches = expectedClientMAC.constantTimeEquals(ke3.clientMAC)
        guard matches, !isFake else { throw .clientAuthenticationFailed }
        return sessionKey
    }
}
