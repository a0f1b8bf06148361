/// The reply of the `limits@openssh.com` extension (all values in bytes / handles; 0 = unknown).
public struct SFTPLimits: Hashable, Sendable {
    public var maxPacketLength: UInt64
    public var maxReadLength: UInt64
    public var maxWriteLength: UInt64
    public var maxOpenHandles: UInt64

    public init(maxPacketLength: UInt64, maxReadLength: UInt64, maxWriteLength: UInt64, maxOpenHandles: UInt64) {
        self.maxPacketLength = maxPacketLength
        self.maxReadLength = maxReadLength
        self.maxWriteLength = maxWriteLength
        self.maxOpenHandles = maxOpenHandles
    }

    /// Conservative values assumed when the server does not implement `limits@openssh.com`.
    public static let conservative = SFTPLimits(maxPacketLength: 34000, maxReadLength: 32768, maxWriteLength: 32768, maxOpenHandles: 0)

    func encode(into w: inout SFTPWireWriter) {
        w.u64(maxPacketLength); w.u64(maxReadLength); w.u64(maxWriteLength); w.u64(maxOpenHandles)
    }

    init(from r: inout SFTPWireReader) throws(SFTPError) {
        maxPacketLength = try r.u64()
        maxReadLength = try r.u64()
        maxWriteLength = try r.u64()
        maxOpenHandles = try r.u64()
    }
}
