/// Every SFTP v3 message (requests and responses) with its wire codec.
///
/// Paths and file names are carried as Swift `String`s (UTF-8 on the wire;
/// invalid UTF-8 received from a peer is decoded lossily). Handles and file
/// data are raw bytes. Trailing bytes after a well-formed message are ignored,
/// as OpenSSH does.
public enum SFTPMessage: Hashable, Sendable {
    /// Packet type numbers.
    public enum PacketType: UInt8, Sendable {
        case initialize = 1, version = 2, open = 3, close = 4, read = 5, write = 6, lstat = 7, fstat = 8
        case setstat = 9, fsetstat = 10, opendir = 11, readdir = 12, remove = 13, mkdir = 14, rmdir = 15
        case realpath = 16, stat = 17, rename = 18, readlink = 19, symlink = 20
        case status = 101, handle = 102, data = 103, name = 104, attrs = 105
        case extended = 200, extendedReply = 201
    }

    /// An extension name/data pair of INIT or VERSION.
    public struct ExtensionPair: Hashable, Sendable {
        public var name: String
        public var data: String
        public init(name: String, data: String) { self.name = name; self.data = data }
    }

    case initialize(version: UInt32, extensions: [ExtensionPair])
    case version(version: UInt32, extensions: [ExtensionPair])
    case open(id: UInt32, path: String, flags: SFTPOpenFlags, attributes: SFTPAttributes)
    case close(id: UInt32, handle: [UInt8])
    case read(id: UInt32, handle: [UInt8], offset: UInt64, length: UInt32)
    case write(id: UInt32, handle: [UInt8], offset: UInt64, data: [UInt8])
    case lstat(id: UInt32, path: String)
    case fstat(id: UInt32, handle: [UInt8])
    case setstat(id: UInt32, path: String, attributes: SFTPAttributes)
    case fsetstat(id: UInt32, handle: [UInt8], attributes: SFTPAttributes)
    case opendir(id: UInt32, path: String)
    case readdir(id: UInt32, handle: [UInt8])
    case remove(id: UInt32, path: String)
    case mkdir(id: UInt32, path: String, attributes: SFTPAttributes)
    case rmdir(id: UInt32, path: String)
    case realpath(id: UInt32, path: String)
    case stat(id: UInt32, path: String)
    case rename(id: UInt32, oldPath: String, newPath: String)
    case readlink(id: UInt32, path: String)
    /// OpenSSH argument order: the *target* (link contents) is sent first, the
    /// path of the link to create second. The draft specifies the reverse, but
    /// every deployed OpenSSH client and server uses this order.
    case symlink(id: UInt32, target: String, linkPath: String)
    case status(id: UInt32, code: SFTPStatus, message: String, language: String)
    case handle(id: UInt32, handle: [UInt8])
    case data(id: UInt32, data: [UInt8])
    case name(id: UInt32, entries: [SFTPNameEntry])
    case attrs(id: UInt32, attributes: SFTPAttributes)
    /// `data` is the request-specific payload following the extension name.
    case extended(id: UInt32, name: String, data: [UInt8])
    /// `data` is the extension-specific payload following the request id.
    case extendedReply(id: UInt32, data: [UInt8])

    public var type: PacketType {
        switch self {
        case .initialize: .initialize
        case .version: .version
        case .open: .open
        case .close: .close
        case .read: .read
        case .write: .write
        case .lstat: .lstat
        case .fstat: .fstat
        case .setstat: .setstat
        case .fsetstat: .fsetstat
        case .opendir: .opendir
        case .readdir: .readdir
        case .remove: .remove
        case .mkdir: .mkdir
        case .rmdir: .rmdir
        case .realpath: .realpath
        case .stat: .stat
        case .rename: .rename
        case .readlink: .readlink
        case .symlink: .symlink
        case .status: .status
        case .handle: .handle
        case .data: .data
        case .name: .name
        case .attrs: .attrs
        case .extended: .extended
        case .extendedReply: .extendedReply
        }
    }

    /// The request id, or nil for INIT / VERSION.
    public var requestID: UInt32? {
        switch self {
        case .initialize, .version: nil
        case .open(let id, _, _, _), .close(let id, _), .read(let id, _, _, _), .write(let id, _, _, _),
             .lstat(let id, _), .fstat(let id, _), .setstat(let id, _, _), .fsetstat(let id, _, _),
             .opendir(let id, _), .readdir(let id, _), .remove(let id, _), .mkdir(let id, _, _),
             .rmdir(let id, _), .realpath(let id, _), .stat(let id, _), .rename(let id, _, _),
             .readlink(let id, _), .symlink(let id, _, _), .status(let id, _, _, _), .handle(let id, _),
             .data(let id, _), .name(let id, _), .attrs(let id, _), .extended(let id, _, _),
             .extendedReply(let id, _):
            id
        }
    }

    /// True for messages a server sends (VERSION and the 101...105, 201 responses).
    public var isResponse: Bool {
        switch type {
        case .version, .status, .handle, .data, .name, .attrs, .extendedReply: true
        default: false
        }
    }

    /// The complete packet: uint32 length, type byte, payload.
    public func encode() -> [UInt8] {
        var w = SFTPWireWriter()
        w.u8(type.rawValue)
        if let id = requestID { w.u32(id) }
        switch self {
        case .initialize(let version, let exts), .version(let version, let exts):
            w.u32(version)
            for e in exts { w.string(e.name); w.string(e.data) }
        case .open(_, let path, let flags, let attrs):
            w.string(path); w.u32(flags.rawValue); attrs.encode(into: &w)
        case .close(_, let h), .fstat(_, let h), .readdir(_, let h), .handle(_, let h):
            w.data(h)
        case .read(_, let h, let offset, let length):
            w.data(h); w.u64(offset); w.u32(length)
        case .write(_, let h, let offset, let data):
            w.data(h); w.u64(offset); w.data(data)
        case .lstat(_, let p), .opendir(_, let p), .remove(_, let p), .rmdir(_, let p),
             .realpath(_, let p), .stat(_, let p), .readlink(_, let p):
            w.string(p)
        case .setstat(_, let p, let attrs), .mkdir(_, let p, let attrs):
            w.string(p); attrs.encode(into: &w)
        case .fsetstat(_, let h, let attrs):
            w.data(h); attrs.encode(into: &w)
        case .rename(_, let a, let b), .symlink(_, let a, let b):
            w.string(a); w.string(b)
        case .status(_, let code, let message, let language):
            w.u32(code.rawValue); w.string(message); w.string(language)
        case .data(_, let d):
            w.data(d)
        case .name(_, let entries):
            w.u32(UInt32(truncatingIfNeeded: entries.count))
            for e in entries { w.string(e.filename); w.string(e.longname); e.attributes.encode(into: &w) }
        case .attrs(_, let attrs):
            attrs.encode(into: &w)
        case .extended(_, let name, let data):
            w.string(name); w.raw(data)
        case .extendedReply(_, let data):
            w.raw(data)
        }
        return w.packet()
    }

    /// Decodes a packet body (the bytes after the uint32 length).
    public static func decode(_ body: ArraySlice<UInt8>) throws(SFTPError) -> SFTPMessage {
        var r = SFTPWireReader(body)
        let typeByte = try r.u8()
        guard let type = PacketType(rawValue: typeByte) else {
            throw .malformedPacket("unknown packet type \(typeByte)")
        }
        if type == .initialize || type == .version {
            let version = try r.u32()
            var exts: [ExtensionPair] = []
            while r.remaining > 0 { exts.append(ExtensionPair(name: try r.string(), data: try r.string())) }
            return type == .initialize ? .initialize(version: version, extensions: exts)
                                       : .version(version: version, extensions: exts)
        }
        let id = try r.u32()
        switch type {
        case .initialize, .version:
            throw .malformedPacket("unreachable")
        case .open:
            let path = try r.string()
            let flags = SFTPOpenFlags(rawValue: try r.u32())
            return .open(id: id, path: path, flags: flags, attributes: try SFTPAttributes(from: &r))
        case .close: return .close(id: id, handle: try r.data())
        case .read:
            let h = try r.data()
            let offset = try r.u64()
            return .read(id: id, handle: h, offset: offset, length: try r.u32())
        case .write:
            let h = try r.data()
            let offset = try r.u64()
            return .write(id: id, handle: h, offset: offset, data: try r.data())
        case .lstat: return .lstat(id: id, path: try r.string())
        case .fstat: return .fstat(id: id, handle: try r.data())
        case .setstat:
            let p = try r.string()
            return .setstat(id: id, path: p, attributes: try SFTPAttributes(from: &r))
        case .fsetstat:
            let h = try r.data()
            return .fsetstat(id: id, handle: h, attributes: try SFTPAttributes(from: &r))
        case .opendir: return .opendir(id: id, path: try r.string())
        case .readdir: return .readdir(id: id, handle: try r.data())
        case .remove: return .remove(id: id, path: try r.string())
        case .mkdir:
            let p = try r.string()
            return .mkdir(id: id, path: p, attributes: try SFTPAttributes(from: &r))
        case .rmdir: return .rmdir(id: id, path: try r.string())
        case .realpath: return .realpath(id: id, path: try r.string())
        case .stat: return .stat(id: id, path: try r.string())
        case .rename:
            let a = try r.string()
            return .rename(id: id, oldPath: a, newPath: try r.string())
        case .readlink: return .readlink(id: id, path: try r.string())
        case .symlink:
            let target = try r.string()
            return .symlink(id: id, target: target, linkPath: try r.string())
        case .status:
            let code = SFTPStatus(rawValue: try r.u32())
            // Some ancient servers omit message and language; tolerate that.
            let message = r.remaining > 0 ? try r.string() : ""
            let language = r.remaining > 0 ? try r.string() : ""
            return .status(id: id, code: code, message: message, language: language)
        case .handle: return .handle(id: id, handle: try r.data())
        case .data: return .data(id: id, data: try r.data())
        case .name:
            let n = try r.checkCount(try r.u32(), minSize: 12, "name")
            var entries: [SFTPNameEntry] = []
            for _ in 0..<n {
                let f = try r.string()
                let l = try r.string()
                entries.append(SFTPNameEntry(filename: f, longname: l, attributes: try SFTPAttributes(from: &r)))
            }
            return .name(id: id, entries: entries)
        case .attrs: return .attrs(id: id, attributes: try SFTPAttributes(from: &r))
        case .extended:
            let name = try r.string()
            return .extended(id: id, name: name, data: r.rest())
        case .extendedReply: return .extendedReply(id: id, data: r.rest())
        }
    }
}
