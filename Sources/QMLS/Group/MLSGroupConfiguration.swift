#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// MARK: - Group configuration

/// Application policy for one group: wire formats, validation hooks and limits. It is not part
/// of the serialized group state; pass it again when restoring a group.
public struct MLSGroupConfiguration: Sendable {
    /// Wire format for proposals and commits this member sends (application data is always
    /// a PrivateMessage).
    public var handshakeWireFormat: WireFormat = .privateMessage
    /// Out-of-order window and maximum forward distance of the sender ratchets.
    public var ratchetLimits = RatchetLimits()
    /// Whether Welcomes carry the `ratchet_tree` extension in their GroupInfo.
    public var ratchetTreeInWelcome = true
    /// How many past epochs keep their message keys, so that application messages sent just
    /// before a commit still decrypt after it (0 for strict forward secrecy at each epoch).
    public var pastEpochRetention = 2
    /// How many past epochs' resumption PSKs are kept.
    public var resumptionPSKHistory = 8
    /// Pads PrivateMessage content to a multiple of this many bytes (0: no padding).
    public var paddingBlockSize = 0
    /// Checks leaf-node lifetimes of received key packages and trees against `clock`.
    public var validateLifetimes = true
    /// The longest `not_after - not_before` accepted (RFC 9420 §7.2 requires a maximum).
    public var maximumLifetime: UInt64 = 10 * 365 * 24 * 3600
    /// Seconds since the Unix epoch.
    public var clock: @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970) }
    /// The Authentication Service hook: whether a credential is valid for a signature key.
    /// The default accepts basic credentials and refuses X.509 chains and unknown types, which
    /// need an application validator.
    public var credentialValidator: @Sendable (Credential, [UInt8]) -> Bool = { credential, _ in
        if case .basic = credential {
            return true
        }
        return false
    }

    public init() {}
}
