import Foundation
import Logging
import NIOCore
import NIOPosix
import QNSPNIO
import QSSHSession

/// qsshd's password login (`--password-auth`, docs/protocol.md §7.10): builds the
/// ``PasswordLogin`` of a connection whose QNSP handshake succeeded without an authorized key.
///
/// Each password runs PAM's auth and account stacks on `pool` (never on an event loop); on
/// success the account is looked up as for key logins, the login takes a session slot, PAM's
/// session stack opens, and the transaction ends when the connection closes. Every failure is
/// logged, written to the audit log, and answered after the per-source delay of `throttle`.
package struct PasswordLoginService: Sendable {
    package var service: String
    package var authorizer: AccountAuthorizer
    package var pool: NIOThreadPool
    package var throttle: LoginFailureThrottle
    package var audit: AuditLog?
    package var log: Logger
    /// `--permit-root-password`: whether uid 0 may log in with a password (off by default).
    package var permitRoot: Bool

    package init(
        service: String, authorizer: AccountAuthorizer, pool: NIOThreadPool, throttle: LoginFailureThrottle,
        audit: AuditLog?, log: Logger, permitRoot: Bool = false
    ) {
        self.permitRoot = permitRoot
        self.service = service
        self.authorizer = authorizer
        self.pool = pool
        self.throttle = throttle
        self.audit = audit
        self.log = log
    }

    /// A PAM service name as `pam_start` takes it: a file name in /etc/pam.d.
    package static func isValidServiceName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && !name.hasPrefix(".")
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    /// Why an account may not log in with a password whatever the password is, or nil:
    /// uid 0 is refused unless `permitRoot` (`--permit-root-password`).
    package static func accountRefusal(uid: UInt32, permitRoot: Bool) -> String? {
        uid == 0 && !permitRoot ? "root (uid 0) may not log in with a password (see --permit-root-password)" : nil
    }

    /// Why a password is refused before PAM sees it, or nil: PAM modules take C strings, so a
    /// NUL byte would cut the password short (the rest would go unchecked).
    package static func passwordRefusal(_ password: String) -> String? {
        password.utf8.contains(0) ? "the password contains a NUL byte" : nil
    }

    private enum Outcome: Sendable {
        case accepted(PAMSessionHelper.Opened, SessionUser)
        /// `pamDelay`: the failure delay PAM's modules asked for, waited before answering.
        case refused(String, pamDelay: TimeAmount = .zero)
    }

    /// The password login of one connection.
    /// - Parameters:
    ///   - takeSlot: asked after PAM accepted; false when the sessions are full (refused).
    ///   - accepted: told the account once a password was accepted.
    ///   - remoteAddress: the client's address (for a QUIC stream, the QUIC connection's peer:
    ///     the stream's channel has none). When unknown, every password is refused unchecked.
    package func login(
        user: String, channel: Channel, remoteAddress: SocketAddress?, takeSlot: @escaping @Sendable () -> Bool,
        accepted: @escaping @Sendable (SessionUser) -> Void
    ) -> PasswordLogin {
        let remoteHost = remoteAddress?.ipAddress  // PAM_RHOST and the throttle's key
        let peer = remoteHost ?? "?"
        let auditPeer = remoteAddress?.description ?? "?"  // as qsshd's other audit records name it
        let source = QNSPBootstrap.addressBytes(remoteAddress)
        let unknownSource = remoteHost == nil || source.isEmpty
        let service = self.service, authorizer = self.authorizer, pool = self.pool
        let throttle = self.throttle, audit = self.audit, log = self.log, permitRoot = self.permitRoot
        return PasswordLogin(
            username: user,
            verify: { password, loop in
                pool.runIfActive(eventLoop: loop) { () -> Outcome in
                    // No address, no throttle bucket of its own: never check a password then.
                    if unknownSource { return .refused("the client's address is unknown") }
                    if let why = Self.passwordRefusal(password) { return .refused(why) }
                    // Root is refused before PAM sees its password (no guessing it over this door).
                    if case .success(let known) = authorizer.lookupAccount(user),
                       let why = Self.accountRefusal(uid: known.uid, permitRoot: permitRoot) {
                        return .refused(why)
                    }
                    var secret = Array(password.utf8)
                    let pam = PAMLogin.authenticate(service: service, user: user, remoteHost: remoteHost, password: &secret)
                    guard case .success(let transaction) = pam else {
                        if case .failure(let failure) = pam { return .refused(failure.description, pamDelay: failure.requestedDelay) }
                        return .refused("PAM failed")
                    }
                    // The auth transaction ends here; the session stack runs in a helper process.
                    transaction.end()
                    guard case .success(var account) = authorizer.lookupAccount(user) else {
                        if case .failure(let refusal) = authorizer.lookupAccount(user) { return .refused(refusal.description) }
                        return .refused("no account")
                    }
                    if let why = Self.accountRefusal(uid: account.uid, permitRoot: permitRoot) { return .refused(why) }
                    guard takeSlot() else { return .refused("sessions full (--max-connections)") }
                    switch PAMSessionHelper.open(service: service, user: user, remoteHost: remoteHost) {
                    case .failure(let failure):
                        return .refused(failure.description)
                    case .success(let opened):
                        account.loginEnvironment = opened.session.environment
                        account.loginLimits = opened.session.limits
                        return .accepted(opened, account)
                    }
                }
                .recover { error in .refused("\(error)") }
                .flatMap { outcome -> EventLoopFuture<SessionUser?> in
                    switch outcome {
                    case .accepted(let opened, let account):
                        throttle.succeeded(source: source)
                        log.notice("accepted \(user) from \(peer) with a password (PAM service \(service))")
                        audit?.record("auth-success", peer: auditPeer, user: user, detail: "password (PAM service \(service))")
                        // The PAM session ends with the connection (blocking: on the pool).
                        channel.closeFuture.whenComplete { _ in
                            pool.runIfActive(eventLoop: loop) { PAMSessionHelper.finish(opened.process) }
                                .whenFailure { _ in PAMSessionHelper.finish(opened.process) }
                        }
                        accepted(account)
                        return loop.makeSucceededFuture(account)
                    case .refused(let why, let pamDelay):
                        // An unknown address shares no bucket with anyone (nothing was checked).
                        let delay = (unknownSource ? .zero : throttle.failed(source: source)) + pamDelay
                        let failures = unknownSource ? 0 : throttle.failures(source: source)
                        let slowed = delay > .zero ? "; answered after \(delay.nanoseconds / 1_000_000) ms (\(failures) failures in a row from this address\(pamDelay > .zero ? ", \(pamDelay.nanoseconds / 1_000_000) ms of them asked for by PAM" : ""))" : ""
                        log.notice("refused the password of \(user) from \(peer): \(why)\(slowed)")
                        audit?.recordUnauthenticated("auth-failure", peer: auditPeer, user: user, detail: "password: \(why)\(slowed)")
                        return loop.scheduleTask(in: delay) { nil }.futureResult
                    }
                }
            },
            onGiveUp: {
                log.notice("closing the connection of \(user) from \(peer): too many wrong passwords")
                channel.close(promise: nil)
            })
    }
}
