import CQSSHPAM
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import QNSPCrypto
import QSSHSession

/// One PAM transaction for one password login (docs/protocol.md §7.10): the auth and account
/// stacks run in ``authenticate(service:user:remoteHost:password:)``, the session stack in
/// ``openSession()``, and ``end()`` closes the session and ends the transaction.
///
/// Every call blocks (modules read files, may sleep on failure): run them on a thread pool,
/// never on an event loop. libpam modules are not all thread-safe, so all calls in the process
/// are serialized.
package final class PAMLogin: @unchecked Sendable {
    /// Serializes every PAM call of the process.
    private static let lock = NIOLock()
    private var handle: OpaquePointer?

    private init(handle: OpaquePointer) { self.handle = handle }

    /// Why PAM refused (for the server log and the audit log; the client learns nothing).
    package struct Failure: Error, Equatable, CustomStringConvertible {
        package enum Step: String, Sendable { case start, authentication, account, session }
        package var step: Step
        package var status: Int32
        package var message: String
        /// The failure delay the modules asked for (pam_fail_delay; not slept by PAM).
        package var requestedDelay: TimeAmount = .zero
        package var description: String { "PAM \(step.rawValue) failed: \(message)" }
    }

    /// Authenticates `user` with `password` through `service` and checks the account (expired
    /// or locked accounts fail). The password bytes are zeroized before this returns.
    package static func authenticate(
        service: String, user: String, remoteHost: String?, password: inout [UInt8]
    ) -> Result<PAMLogin, Failure> {
        defer { Self.zeroize(&password) }
        var message = [CChar](repeating: 0, count: 256)
        var step: Int32 = 0
        var out: OpaquePointer?
        var delay: UInt32 = 0
        let status = lock.withLock {
            password.withUnsafeBufferPointer { secret in
                qssh_pam_login(service, user, remoteHost, secret.baseAddress, secret.count, &out, &step, &delay, &message, message.count)
            }
        }
        guard status == qssh_pam_success(), let out else {
            let which: Failure.Step
            switch step {
            case Int32(QSSH_PAM_STEP_AUTHENTICATE): which = .authentication
            case Int32(QSSH_PAM_STEP_ACCOUNT): which = .account
            default: which = .start
            }
            return .failure(Failure(
                step: which, status: status, message: Self.text(message), requestedDelay: .microseconds(Int64(delay))))
        }
        return .success(PAMLogin(handle: out))
    }

    /// What the session stack gives the session's processes.
    package struct Session: Sendable, Equatable {
        /// The PAM environment (pam_env and the like).
        package var environment: [String: String] = [:]
        /// The resource limits it set (pam_limits).
        package var limits: [ResourceLimit] = []
    }

    /// A transaction for an account authenticated elsewhere (the session helper process).
    package static func begin(service: String, user: String, remoteHost: String?) -> Result<PAMLogin, Failure> {
        var message = [CChar](repeating: 0, count: 256)
        var out: OpaquePointer?
        let status = lock.withLock { qssh_pam_begin(service, user, remoteHost, &out, &message, message.count) }
        guard status == qssh_pam_success(), let out else {
            return .failure(Failure(step: .start, status: status, message: Self.text(message)))
        }
        return .success(PAMLogin(handle: out))
    }

    /// Establishes credentials and opens the session.
    package func openSession() -> Result<Session, Failure> {
        var message = [CChar](repeating: 0, count: 256)
        return Self.lock.withLock {
            guard let handle else { return .failure(Failure(step: .session, status: -1, message: "transaction already ended")) }
            let status = qssh_pam_open_session(handle, &message, message.count)
            guard status == qssh_pam_success() else {
                return .failure(Failure(step: .session, status: status, message: Self.text(message)))
            }
            var session = Session()
            for resource in 0..<qssh_pam_limit_count() {
                var soft: UInt64 = 0, hard: UInt64 = 0
                if qssh_pam_session_limit(handle, resource, &soft, &hard) == 1 {
                    session.limits.append(ResourceLimit(resource: resource, soft: soft, hard: hard))
                }
            }
            if let list = qssh_pam_environment(handle) {
                var i = 0
                while let entry = list[i] {
                    let text = String(cString: entry)
                    if let eq = text.firstIndex(of: "="), eq != text.startIndex {
                        session.environment[String(text[..<eq])] = String(text[text.index(after: eq)...])
                    }
                    i += 1
                }
                qssh_pam_free_environment(list)
            }
            return .success(session)
        }
    }

    /// Closes the session (if open) and ends the transaction; later calls do nothing.
    package func end() {
        Self.lock.withLock {
            guard let handle else { return }
            self.handle = nil
            qssh_pam_end(handle)
        }
    }

    deinit { if let handle { Self.lock.withLock { qssh_pam_end(handle) } } }

    /// Overwrites secret bytes (explicit_bzero: not removed by the optimizer).
    package static func zeroize(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { buffer in
            if let base = buffer.baseAddress, buffer.count > 0 { explicit_bzero(base, buffer.count) }
        }
    }

    private static func text(_ buffer: [CChar]) -> String {
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return PrintableText.escaped(String(decoding: bytes, as: UTF8.self))
    }
}
