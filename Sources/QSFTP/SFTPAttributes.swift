/// SFTP v3 file attributes (`ATTRS`); absent fields are `nil`.
public struct SFTPAttributes: Hashable, Sendable {
    /// One `extended_type`/`extended_data` pair.
    public struct Extension: Hashable, Sendable {
        public var type: String
        public var data: [UInt8]
        public init(type: String, data: [UInt8]) { self.type = type; self.data = data }
    }

    public static let flagSize: UInt32 = 0x1
    public static let flagUIDGID: UInt32 = 0x2
    public static let flagPermissions: UInt32 = 0x4
    public static let flagACModTime: UInt32 = 0x8
    public static let flagExtended: UInt32 = 0x8000_0000

    public var size: UInt64?
    /// uid and gid are sent together; both must be set for either to be encoded.
    public var uid: UInt32?
    public var gid: UInt32?
    /// Full `st_mode` including the file type bits.
    public var permissions: UInt32?
    /// atime and mtime are sent together; both must be set for either to be encoded.
    public var atime: UInt32?
    public var mtime: UInt32?
    public var extensions: [Extension] = []

    public init(size: UInt64? = nil, uid: UInt32? = nil, gid: UInt32? = nil, permissions: UInt32? = nil,
                atime: UInt32? = nil, mtime: UInt32? = nil, extensions: [Extension] = []) {
        self.size = size; self.uid = uid; self.gid = gid; self.permissions = permissions
        self.atime = atime; self.mtime = mtime; self.extensions = extensions
    }

    /// The flags word that `encode` will write.
    public var flags: UInt32 {
        var f: UInt32 = 0
        if size != nil { f |= Self.flagSize }
        if uid != nil, gid != nil { f |= Self.flagUIDGID }
        if permissions != nil { f |= Self.flagPermissions }
        if atime != nil, mtime != nil { f |= Self.flagACModTime }
        if !extensions.isEmpty { f |= Self.flagExtended }
        return f
    }

    private var fileType: UInt32? { permissions.map { $0 & 0o170000 } }
    public var isDirectory: Bool { fileType == 0o040000 }
    public var isRegularFile: Bool { fileType == 0o100000 }
    public var isSymlink: Bool { fileType == 0o120000 }

    public func encode(into w: inout SFTPWireWriter) {
        let f = flags
        w.u32(f)
        if let size { w.u64(size) }
        if let uid, let gid { w.u32(uid); w.u32(gid) }
        if let permissions { w.u32(permissions) }
        if let atime, let mtime { w.u32(atime); w.u32(mtime) }
        if f & Self.flagExtended != 0 {
            w.u32(UInt32(truncatingIfNeeded: extensions.count))
            for e in extensions { w.string(e.type); w.data(e.data) }
        }
    }

    public init(from r: inout SFTPWireReader) throws(SFTPError) {
        let f = try r.u32()
        if f & Self.flagSize != 0 { size = try r.u64() }
        if f & Self.flagUIDGID != 0 { uid = try r.u32(); gid = try r.u32() }
        if f & Self.flagPermissions != 0 { permissions = try r.u32() }
        if f & Self.flagACModTime != 0 { atime = try r.u32(); mtime = try r.u32() }
        if f & Self.flagExtended != 0 {
            let n = try r.checkCount(try r.u32(), minSize: 8, "extended attribute")
            for _ in 0..<n { extensions.append(Extension(type: try r.string(), data: try r.data())) }
        }
    }
}
