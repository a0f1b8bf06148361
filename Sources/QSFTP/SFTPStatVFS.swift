/// The reply of `statvfs@openssh.com` / `fstatvfs@openssh.com`.
public struct SFTPStatVFS: Hashable, Sendable {
    public var blockSize: UInt64 = 0        // f_bsize
    public var fragmentSize: UInt64 = 0     // f_frsize
    public var blocks: UInt64 = 0           // f_blocks (in fragments)
    public var freeBlocks: UInt64 = 0       // f_bfree
    public var availableBlocks: UInt64 = 0  // f_bavail
    public var files: UInt64 = 0            // f_files
    public var freeFiles: UInt64 = 0        // f_ffree
    public var availableFiles: UInt64 = 0   // f_favail
    public var fsid: UInt64 = 0             // f_fsid
    public var flags: UInt64 = 0            // 1 = ST_RDONLY, 2 = ST_NOSUID
    public var maxNameLength: UInt64 = 0    // f_namemax

    public init() {}

    func encode(into w: inout SFTPWireWriter) {
        for v in [blockSize, fragmentSize, blocks, freeBlocks, availableBlocks, files, freeFiles,
                  availableFiles, fsid, flags, maxNameLength] { w.u64(v) }
    }

    init(from r: inout SFTPWireReader) throws(SFTPError) {
        blockSize = try r.u64(); fragmentSize = try r.u64(); blocks = try r.u64()
        freeBlocks = try r.u64(); availableBlocks = try r.u64(); files = try r.u64()
        freeFiles = try r.u64(); availableFiles = try r.u64(); fsid = try r.u64()
        flags = try r.u64(); maxNameLength = try r.u64()
    }
}
