import Foundation
import QNSP
import QNSPCrypto
import QSSHSession

/// qsshd's login policy: which account a user name logs in to and whether a key may do so.
///
/// It reads the password database and the account's authorized_keys, so it may block: qsshd
/// runs it on a thread pool with a time limit, never on an event loop. Every refusal has a
/// reason for the server log; the client is told only the generic refusal.
package struct AccountAuthorizer: Sendable {
    /// The account a root server logs users in to; nil: only `serverAccount` can log in.
    package var isRoot: Bool
    package var serverAccount: SessionUser
    /// authorized_keys path with %h (home) and %u (user name).
    package var keysPattern: String
    /// The `tty` group for terminals (looked up when the server starts).
    package var terminalGroup: UInt32?
    /// `--no-root-login` (PermitRootLogin no): uid 0 logs in by no method at all.
    package var denyRoot: Bool

    package init(isRoot: Bool, serverAccount: SessionUser, keysPattern: String, terminalGroup: UInt32?, denyRoot: Bool = false) {
        self.isRoot = isRoot
        self.serverAccount = serverAccount
        self.keysPattern = keysPattern
        self.terminalGroup = terminalGroup
        self.denyRoot = denyRoot
    }

    /// The account `user` logs in to with `key`, or the reason it may not.
    package func authorize(user: String, key: UserPublicKey) -> Result<SessionUser, AuthorizationRefusal> {
        let account: SessionUser
        switch lookupAccount(user) {
        case .failure(let refusal): return .failure(refusal)
        case .success(let found): account = found
        }
        let path = Self.keysPath(keysPattern, for: account)
        if let problem = StrictModes.problem(path: path, uid: account.uid) {
            return .failure(.init("refusing \(path): \(problem)"))
        }
        let keys: AuthorizedKeys
        do {
            // Re-read for every login, as sshd does, so edits take effect at once.
            keys = AuthorizedKeys(
                text: String(decoding: try SafeFile.read(path: path, owner: account.uid), as: UTF8.self)
            )
        } catch {
            return .failure(.init("\(error)"))
        }
        guard keys.contains(key) else { return .failure(.init("key \(key.fingerprint) is not in \(path)")) }
        return .success(account)
    }

    /// The account a user name logs in to (root: the user's own; else only the server's), by any
    /// method: keys, certificates and passwords all ask here.
    package func lookupAccount(_ user: String) -> Result<SessionUser, AuthorizationRefusal> {
        guard !PrintableText.containsControlCharacters(user), !user.utf8.contains(0) else {
            return .failure(.init("user name with control characters"))
        }
        var account: SessionUser
        if isRoot {
            guard let found = SessionUser.lookup(user) else { return .failure(.init("no account '\(user)'")) }
            account = found
        } else {
            guard user == serverAccount.name else {
                return .failure(.init("qsshd runs as '\(serverAccount.name)' and cannot start sessions for '\(user)'"))
            }
            account = serverAccount
        }
        if denyRoot && account.uid == 0 {
            return .failure(.init("root (uid 0) may not log in (--no-root-login, PermitRootLogin no)"))
        }
        account.terminalGroup = terminalGroup
        return .success(account)
    }

    /// Expands %h and %u in an authorized_keys path.
    package static func keysPath(_ pattern: String, for user: SessionUser) -> String {
        pattern.replacingOccurrences(of: "%h", with: user.home).replacingOccurrences(of: "%u", with: user.name)
    }
}

/// Why a login was refused (for the server log only).
package struct AuthorizationRefusal: Error, Equatable, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
