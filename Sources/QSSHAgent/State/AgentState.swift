import QNSP
import QNSPCrypto

/// The agent's keys and lock, as a sans-I/O state machine: a decoded request and the
/// current time go in, a reply (or a request to ask the user) comes out. It never touches a
/// socket, a clock or a process; ``AgentServer``-style drivers supply `now` (seconds on a
/// monotonic clock) and run the confirmation prompt.
///
/// Policy:
/// - keys with a lifetime are dropped once `now` reaches their expiry (checked on every call);
/// - a locked agent lists no keys and refuses everything but UNLOCK; the lock passphrase is
///   kept only as a salted SHA-256 and compared in constant time;
/// - SIGN_REQUEST is answered only for a held key, flags 0, and data that is a login with
///   that key: a QNSP ClientAuth signing input for `qnsp-mldsa65` (``ClientAuthSigningInput``),
///   an SSH userauth request for `ssh-ed25519` (``SSHUserauthSigningInput``);
/// - a key added with the confirm constraint yields ``AgentAction/confirm(_:)``; the driver
///   asks the user and calls ``signConfirmed(_:now:)`` only on a yes.
public struct AgentState: Sendable {
    struct Entry: Sendable {
        var type: AgentKeyType
        var publicKey: [UInt8]
        var blob: [UInt8]
        var fingerprint: String
        var comment: String
        var seed: SecureSeed
        var expiresAt: UInt64?
        var confirm: Bool
    }

    struct LockRecord: Sendable {
        var salt: [UInt8]
        var hash: [UInt8]
    }

    private var entries: [Entry] = []
    private var lockRecord: LockRecord?
    private let random: SecureRandom
    /// Failed UNLOCK attempts since the last success (a driver may slow answers by it).
    public private(set) var failedUnlocks = 0

    public init(random: SecureRandom = SecureRandom()) {
        self.random = random
    }

    public var isLocked: Bool { lockRecord != nil }
    public var count: Int { entries.count }
    /// Whether every held seed is in locked memory.
    public var allKeysInLockedMemory: Bool { entries.allSatisfy { $0.seed.isLocked } }

    /// The earliest expiry among held keys (a driver can schedule a sweep for it).
    public var nextExpiry: UInt64? { entries.compactMap(\.expiresAt).min() }

    /// Drops keys whose lifetime has ended.
    public mutating func expire(now: UInt64) {
        entries.removeAll { e in e.expiresAt.map { now >= $0 } ?? false }
    }

    // MARK: Requests

    public mutating func handle(_ request: AgentRequest, now: UInt64) -> AgentAction {
        expire(now: now)
        switch request {
        case .requestIdentities:
            if isLocked { return .reply(.identities([])) }
            return .reply(.identities(entries.map { AgentIdentity(keyBlob: $0.blob, comment: $0.comment) }))
        case .sign(let blob, let data, let flags):
            guard !isLocked, flags == 0, let entry = entries.first(where: { $0.blob == blob }) else {
                return .reply(.failure)
            }
            let username: String
            do {
                username = try Self.checkLogin(data, for: entry)
            } catch {
                return .reply(.failure, note: "\(error)")
            }
            let confirmation = AgentConfirmation(
                keyBlob: blob,
                data: data,
                username: username,
                comment: entry.comment,
                fingerprint: entry.fingerprint
            )
            if entry.confirm { return .confirm(confirmation) }
            return .reply(sign(entry, data))
        case .add(var material, let constraints):
            guard !isLocked else {
                ConstantTime.wipe(&material.seed)
                return .reply(.failure)
            }
            return .reply(add(&material, constraints: constraints, now: now))
        case .remove(let blob):
            guard !isLocked, let index = entries.firstIndex(where: { $0.blob == blob }) else { return .reply(.failure) }
            entries.remove(at: index)
            return .reply(.success)
        case .removeAll:
            guard !isLocked else { return .reply(.failure) }
            entries.removeAll()
            return .reply(.success)
        case .lock(var passphrase):
            defer { ConstantTime.wipe(&passphrase) }
            guard !isLocked, let salt = try? random.bytes(16) else { return .reply(.failure) }
            lockRecord = LockRecord(salt: salt, hash: KeyDerivation.sha256(salt + passphrase))
            return .reply(.success)
        case .unlock(var passphrase):
            defer { ConstantTime.wipe(&passphrase) }
            guard let record = lockRecord else { return .reply(.failure) }
            guard ConstantTime.equals(KeyDerivation.sha256(record.salt + passphrase), record.hash) else {
                failedUnlocks += 1
                return .reply(.failure, note: "wrong unlock passphrase")
            }
            lockRecord = nil
            failedUnlocks = 0
            return .reply(.success)
        case .unsupported:
            return .reply(.failure)
        }
    }

    /// Completes a confirmed sign request. Everything is checked again: the key may have been
    /// removed or expired, or the agent locked, while the user was asked.
    public mutating func signConfirmed(_ confirmation: AgentConfirmation, now: UInt64) -> AgentResponse {
        expire(now: now)
        guard !isLocked, let entry = entries.first(where: { $0.blob == confirmation.keyBlob }),
            (try? Self.checkLogin(confirmation.data, for: entry)) != nil
        else { return .failure }
        return sign(entry, confirmation.data)
    }

    // MARK: Helpers

    /// Checks that `data` is a login with `entry`'s key; returns the user name it logs in as.
    static func checkLogin(_ data: [UInt8], for entry: Entry) throws(AgentError) -> String {
        switch entry.type {
        case .qnspMLDSA65:
            let input = try ClientAuthSigningInput(agentData: data)
            // The key field holds the bare key or a certificate for it (docs/protocol.md §7.7).
            let certified: Bool = {
                guard input.publicKey.count != entry.publicKey.count,
                    let cert = try? QNSPCertificate(blob: input.publicKey),
                    case .user(let key) = cert.subject
                else { return false }
                return key.blob == entry.publicKey
            }()
            guard input.publicKey == entry.publicKey || certified else {
                throw .notLoginData("the signing input names another public key")
            }
            return input.username
        case .ed25519:
            let input = try SSHUserauthSigningInput(data: data)
            guard input.algorithm == AgentKeyType.ed25519.rawValue, input.keyBlob == entry.blob else {
                throw .notLoginData("the userauth request names another key")
            }
            return input.username
        }
    }

    /// Signs checked data: for ML-DSA-65 the message after the context, under that context.
    private func sign(_ entry: Entry, _ data: [UInt8]) -> AgentResponse {
        switch entry.type {
        case .qnspMLDSA65:
            guard let input = try? ClientAuthSigningInput(agentData: data),
                let signature = try? entry.seed.sign(input.message, context: KeySchedule.clientAuthContext)
            else { return .failure }
            return .signature(blob: AgentKeyFormat.signatureBlob(type: .qnspMLDSA65, signature))
        case .ed25519:
            guard let signature = entry.seed.signEd25519(data) else { return .failure }
            return .signature(blob: AgentKeyFormat.signatureBlob(type: .ed25519, signature))
        }
    }

    private mutating func add(
        _ material: inout AgentKeyMaterial,
        constraints: AgentConstraints,
        now: UInt64
    ) -> AgentResponse {
        // The seed must regenerate the public key it came with.
        let derived: [UInt8]?
        switch material.type {
        case .qnspMLDSA65: derived = (try? SignatureScheme.PrivateKey(seed: material.seed))?.publicKey.rawRepresentation
        case .ed25519: derived = SecureSeed.ed25519PublicKey(seed: material.seed)
        }
        guard let derived, derived == material.publicKey else {
            ConstantTime.wipe(&material.seed)
            return .failure
        }
        let seed: SecureSeed
        do {
            seed = try SecureSeed(wiping: &material.seed)
        } catch {
            return .failure
        }
        let blob = AgentKeyFormat.keyBlob(type: material.type, publicKey: derived)
        let entry = Entry(
            type: material.type,
            publicKey: derived,
            blob: blob,
            fingerprint: AgentKeyFormat.fingerprint(type: material.type, publicKey: derived),
            comment: material.comment,
            seed: seed,
            expiresAt: constraints.lifetime.map { now + UInt64($0) },
            confirm: constraints.confirm
        )
        // Adding a held key again replaces it (new comment and constraints), as OpenSSH does.
        if let index = entries.firstIndex(where: { $0.blob == blob }) {
            entries[index] = entry
        } else {
            entries.append(entry)
        }
        return .success
    }
}

/// What the agent does with a request.
public enum AgentAction: Sendable {
    /// Send this reply; `note` says why a request was refused, for the agent's log.
    case reply(AgentResponse, note: String? = nil)
    /// Ask the user (SSH_ASKPASS); on a yes call ``AgentState/signConfirmed(_:now:)``, on
    /// anything else reply ``AgentResponse/failure``.
    case confirm(AgentConfirmation)
}

/// A sign request waiting for the user's yes.
public struct AgentConfirmation: Sendable {
    public var keyBlob: [UInt8]
    public var data: [UInt8]
    /// The account the signature logs in to.
    public var username: String
    public var comment: String
    public var fingerprint: String

    /// The question for SSH_ASKPASS (names only what the user can check; escaped by the driver).
    public var prompt: String {
        "Allow use of key \(comment.isEmpty ? "(no comment)" : comment)?\nKey fingerprint \(fingerprint).\n"
            + "Signing a login as '\(username)'."
    }
}
