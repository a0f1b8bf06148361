/// One resource limit for a session's processes (setrlimit in the child before it drops
/// privileges): what a PAM session's pam_limits set for the login (docs/protocol.md §7.10).
public struct ResourceLimit: Sendable, Equatable {
    /// The RLIMIT_* number.
    public var resource: Int32
    public var soft: UInt64
    public var hard: UInt64

    public init(resource: Int32, soft: UInt64, hard: UInt64) {
        self.resource = resource
        self.soft = soft
        self.hard = hard
    }

    /// Triplets (resource, soft, hard) as the spawn shim takes them.
    static func flattened(_ limits: [ResourceLimit]) -> [UInt64] {
        limits.flatMap { [UInt64(bitPattern: Int64($0.resource)), $0.soft, $0.hard] }
    }
}
