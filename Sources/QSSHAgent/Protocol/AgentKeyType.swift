/// The key types this agent holds.
public enum AgentKeyType: String, Sendable, CaseIterable {
    /// Our ML-DSA-65 user keys (docs/keys.md), for QNSP logins.
    case qnspMLDSA65 = "qnsp-mldsa65"
    /// OpenSSH Ed25519 keys, for the classical SSH login behind `qsshd --bridge`.
    case ed25519 = "ssh-ed25519"

    public var publicKeySize: Int {
        switch self {
        case .qnspMLDSA65: return 1952
        case .ed25519: return 32
        }
    }

    public var signatureSize: Int {
        switch self {
        case .qnspMLDSA65: return 3309
        case .ed25519: return 64
        }
    }
}
