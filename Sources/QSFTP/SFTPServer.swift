#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The SFTP v3 server core: one packet body in, one response packet out.
///
/// All file operations are synchronous POSIX calls made with the caller's
/// credentials. `handle(_:)` never throws: malformed requests are answered with
/// `STATUS BAD_MESSAGE` (unknown packet types with `OP_UNSUPPORTED`) carrying
/// the request id when the first five bytes are present and id 0 otherwise; the
/// session always continues. Requests sent before INIT are served (lenient), and
/// a repeated INIT is answered with VERSION again.
///
/// When `root` is set, client paths are confined to it; see `SFTPPathResolver`
/// and SFTP-NOTES.md for the exact rules. Not thread-safe; use one instance per
/// session.
public final class SFTPServer {
    public static let maxHandles = 256
    public static let maxReadLength = 256 * 1024
    public static let maxWriteLength = 256 * 1024
    public static let readdirBatch = 100

    /// Extensions advertised in VERSION (all implemented).
    public static let extensions: [SFTPMessage.ExtensionPair] = [
        .init(name: "posix-rename@openssh.com", data: "1"),
        .init(name: "statvfs@openssh.com", data: "2"),
        .init(name: "fstatvfs@openssh.com", data: "2"),
        .init(name: "hardlink@openssh.com", data: "1"),
        .init(name: "fsync@openssh.com", data: "1"),
        .init(name: "limits@openssh.com", data: "1"),
    ]

    /// The value of the `limits@openssh.com` reply.
    public static let limits = SFTPLimits(
        maxPacketLength: UInt64(SFTPPacketReader.defaultMaxPacketLength),
        maxReadLength: UInt64(maxReadLength), maxWriteLength: UInt64(maxWriteLength),
        maxOpenHandles: UInt64(maxHandles))

    private enum OpenHandle {
        case file(CInt)
        case directory(OpaquePointer, host: String)
    }

    /// Canonical host path of the confinement root, nil when unconfined.
    public let root: String?
    private let resolver: SFTPPathResolver?
    private var handles: [[UInt8]: OpenHandle] = [:]
    private var handleCounter: UInt64 = 0
    private var longNames = SFTPLongName()

    /// The order of SSH_FXP_SYMLINK's two paths. OpenSSH's sftp-server reads the target first
    /// (the reverse of the draft), and OpenSSH's sftp and paramiko send it that way; asyncssh
    /// sends the draft's order (link path first) unless the server calls itself OpenSSH.
    public enum SymlinkArgumentOrder: Sendable, Equatable {
        case targetFirst
        case linkFirst

        /// The order a client announcing `version` (its SSH banner, e.g. "SSH-2.0-AsyncSSH_2.14") sends.
        public static func of(clientVersion version: String?) -> SymlinkArgumentOrder {
            guard let version else { return .targetFirst }
            return version.hasPrefix("SSH-2.0-AsyncSSH") ? .linkFirst : .targetFirst
        }
    }

    /// How this server reads SSH_FXP_SYMLINK.
    public let symlinkOrder: SymlinkArgumentOrder

    /// - Parameter root: confine all client paths to this directory (it is canonicalised with realpath(3)).
    /// - Parameter symlinkOrder: the client's order of SSH_FXP_SYMLINK's paths.
    public init(root: String? = nil, symlinkOrder: SymlinkArgumentOrder = .targetFirst) {
        self.symlinkOrder = symlinkOrder
        if let root {
            var canonical = root
            if let p = realpath(root, nil) { canonical = String(cString: p); free(p) }
            self.root = canonical
            self.resolver = SFTPPathResolver(root: canonical)
        } else {
            self.root = nil
            self.resolver = nil
        }
    }

    deinit { closeAll() }

    /// Number of handles currently open.
    public var openHandleCount: Int { handles.count }

    /// Closes every open file and directory handle.
    public func closeAll() {
        for (_, h) in handles { Self.release(h) }
        handles.removeAll()
    }

    /// Processes one packet body (bytes after the length) and returns the complete response packet.
    public func handle(_ body: ArraySlice<UInt8>) -> [UInt8] {
        let message: SFTPMessage
        do {
            message = try SFTPMessage.decode(body)
        } catch {
            return Self.rejection(body: body, error: error).encode()
        }
        return respond(to: message).encode()
    }

    public func handle(_ body: [UInt8]) -> [UInt8] { handle(body[...]) }

    /// Processes one decoded message.
    public func respond(to message: SFTPMessage) -> SFTPMessage {
        switch message {
        case .initialize:
            return .version(version: 3, extensions: Self.extensions)
        case .version:
            return .status(id: 0, code: .badMessage, message: "unexpected VERSION", language: "")
        default:
            let id = message.requestID ?? 0
            do {
                return try dispatch(message, id: id)
            } catch {
                return Self.status(id, error)
            }
        }
    }

    // MARK: - Errors

    private static func rejection(body: ArraySlice<UInt8>, error: SFTPError) -> SFTPMessage {
        var id: UInt32 = 0
        let typeByte = body.first ?? 0
        if body.count >= 5, typeByte != 1, typeByte != 2 {
            id = body.dropFirst().prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
        }
        let known = SFTPMessage.PacketType(rawValue: typeByte) != nil
        return .status(id: id, code: known ? .badMessage : .opUnsupported,
                       message: known ? error.description : "unsupported packet type \(typeByte)", language: "")
    }

    /// OpenSSH's errno_to_portable().
    static func statusCode(errno e: Int32) -> SFTPStatus {
        switch e {
        case 0: return .ok
        case ENOENT, ENOTDIR, EBADF, ELOOP: return .noSuchFile
        case EPERM, EACCES, EFAULT: return .permissionDenied
        case ENAMETOOLONG, EINVAL: return .badMessage
        case ENOSYS: return .opUnsupported
        default: return .failure
        }
    }

    private static func status(_ id: UInt32, _ error: SFTPError) -> SFTPMessage {
        switch error {
        case .status(let code, let msg):
            return .status(id: id, code: code, message: msg.isEmpty ? code.defaultMessage : msg, language: "")
        case .io(let e, _):
            return .status(id: id, code: statusCode(errno: e), message: POSIX.errorText(e), language: "")
        case .malformedPacket, .packetTooLarge, .emptyPacket, .unexpectedMessage:
            return .status(id: id, code: .badMessage, message: error.description, language: "")
        default:
            return .status(id: id, code: .failure, message: error.description, language: "")
        }
    }

    private static func ok(_ id: UInt32) -> SFTPMessage {
        .status(id: id, code: .ok, message: "Success", language: "")
    }

    private static func check(_ result: Int32, _ what: String) throws(SFTPError) {
        if result != 0 { throw .io(errno, what) }
    }

    // MARK: - Paths

    /// Host path for a client path. `modifying` refuses paths that resolve to the root itself.
    private func host(_ path: String, followFinal: Bool, modifying: Bool = false) throws(SFTPError) -> String {
        guard let resolver else {
            if path.utf8.contains(0) { throw .status(.badMessage, "path contains NUL byte") }
            return path.isEmpty ? "." : path
        }
        let comps = try resolver.resolve(path, followFinal: followFinal)
        if modifying && comps.isEmpty { throw .status(.permissionDenied, "operation on the root directory refused") }
        return resolver.hostPath(comps)
    }

    private func virtualRealpath(_ path: String) throws(SFTPError) -> String {
        let p = path.isEmpty ? "." : path
        if let resolver {
            return "/" + (try resolver.resolve(p, followFinal: true)).joined(separator: "/")
        }
        var start: [String] = []
        if let cwd = getcwd(nil, 0) {
            start = SFTPPathResolver.components(String(cString: cwd))
            free(cwd)
        }
        return "/" + (try SFTPPathResolver(root: "/").resolve(p, start: start, followFinal: true)).joined(separator: "/")
    }

    // MARK: - Handles

    private static func release(_ h: OpenHandle) {
        switch h {
        case .file(let fd): POSIX.closeFD(fd)
        case .directory(let dir, _): _ = closedir(dir)
        }
    }

    private func register(_ h: OpenHandle) -> [UInt8] {
        handleCounter += 1
        let key = Array(String(handleCounter).utf8)
        handles[key] = h
        return key
    }

    private func fileDescriptor(_ handle: [UInt8], allowDirectory: Bool = false) throws(SFTPError) -> CInt {
        switch handles[handle] {
        case .file(let fd): return fd
        case .directory(let dir, _) where allowDirectory: return dirfd(dir)
        default: throw .status(.failure, "invalid handle")
        }
    }

    // MARK: - Attributes

    static func attributes(_ st: stat) -> SFTPAttributes {
        SFTPAttributes(size: UInt64(max(0, Int64(st.st_size))), uid: UInt32(st.st_uid), gid: UInt32(st.st_gid),
                       permissions: UInt32(st.st_mode),
                       atime: UInt32(truncatingIfNeeded: st.st_atim.tv_sec),
                       mtime: UInt32(truncatingIfNeeded: st.st_mtim.tv_sec))
    }

    private static func statPath(_ path: String, follow: Bool) throws(SFTPError) -> stat {
        var st = stat()
        try check(follow ? stat(path, &st) : lstat(path, &st), follow ? "stat" : "lstat")
        return st
    }

    private static func apply(_ a: SFTPAttributes, path: String?, fd: CInt) throws(SFTPError) {
        if let size = a.size {
            guard let s = off_t(exactly: size) else { throw .status(.badMessage, "size out of range") }
            try check(path.map { truncate($0, s) } ?? ftruncate(fd, s), "truncate")
        }
        if let p = a.permissions {
            let m = mode_t(p & 0o7777)
            try check(path.map { chmod($0, m) } ?? fchmod(fd, m), "chmod")
        }
        if let at = a.atime, let mt = a.mtime {
            var tv = [timeval(tv_sec: time_t(at), tv_usec: 0), timeval(tv_sec: time_t(mt), tv_usec: 0)]
            try check(path.map { utimes($0, &tv) } ?? futimes(fd, &tv), "utimes")
        }
        if let u = a.uid, let g = a.gid {
            try check(path.map { chown($0, uid_t(u), gid_t(g)) } ?? fchown(fd, uid_t(u), gid_t(g)), "chown")
        }
    }

    // MARK: - Dispatch

    private func dispatch(_ message: SFTPMessage, id: UInt32) throws(SFTPError) -> SFTPMessage {
        switch message {
        case .open(_, let path, let flags, let attrs):
            guard handles.count < Self.maxHandles else { throw .status(.failure, "too many open handles") }
            var o: Int32
            switch (flags.contains(.read), flags.contains(.write)) {
            case (true, true): o = O_RDWR
            case (false, true): o = O_WRONLY
            default: o = O_RDONLY
            }
            if flags.contains(.append) { o |= O_APPEND }
            if flags.contains(.create) { o |= O_CREAT }
            if flags.contains(.truncate) { o |= O_TRUNC }
            if flags.contains(.exclusive) { o |= O_EXCL }
            o |= O_CLOEXEC
            if resolver != nil { o |= O_NOFOLLOW }
            let mode = mode_t((attrs.permissions ?? 0o666) & 0o7777)
            let fd = open(try host(path, followFinal: true), o, mode)
            if fd < 0 { throw .io(errno, "open") }
            return .handle(id: id, handle: register(.file(fd)))

        case .close(_, let handle):
            guard let h = handles.removeValue(forKey: handle) else { throw .status(.failure, "invalid handle") }
            Self.release(h)
            return Self.ok(id)

        case .read(_, let handle, let offset, let length):
            let fd = try fileDescriptor(handle)
            guard let start = off_t(exactly: offset) else { throw .status(.badMessage, "offset out of range") }
            var buf = [UInt8](repeating: 0, count: min(Int(length), Self.maxReadLength))
            var got = 0
            while got < buf.count {
                let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress.map { $0 + got }, $0.count - got, start + off_t(got)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    if got > 0 { break }
                    throw .io(errno, "read")
                }
                if n == 0 { break }
                got += n
            }
            if got == 0 { throw .status(.eof, "End of file") }
            buf.removeSubrange(got...)
            return .data(id: id, data: buf)

        case .write(_, let handle, let offset, let data):
            let fd = try fileDescriptor(handle)
            guard off_t(exactly: offset) != nil else { throw .status(.badMessage, "offset out of range") }
            try POSIX.pwriteAll(fd, data, offset: offset, what: "write")
            return Self.ok(id)

        case .lstat(_, let path):
            return .attrs(id: id, attributes: Self.attributes(try Self.statPath(try host(path, followFinal: false), follow: false)))

        case .stat(_, let path):
            return .attrs(id: id, attributes: Self.attributes(try Self.statPath(try host(path, followFinal: true), follow: true)))

        case .fstat(_, let handle):
            var st = stat()
            try Self.check(fstat(try fileDescriptor(handle, allowDirectory: true), &st), "fstat")
            return .attrs(id: id, attributes: Self.attributes(st))

        case .setstat(_, let path, let attrs):
            try Self.apply(attrs, path: try host(path, followFinal: true), fd: -1)
            return Self.ok(id)

        case .fsetstat(_, let handle, let attrs):
            try Self.apply(attrs, path: nil, fd: try fileDescriptor(handle, allowDirectory: true))
            return Self.ok(id)

        case .opendir(_, let path):
            guard handles.count < Self.maxHandles else { throw .status(.failure, "too many open handles") }
            let h = try host(path, followFinal: true)
            guard let dir = opendir(h) else { throw .io(errno, "opendir") }
            return .handle(id: id, handle: register(.directory(dir, host: h)))

        case .readdir(_, let handle):
            guard case .directory(let dir, let dirHost)? = handles[handle] else { throw .status(.failure, "invalid handle") }
            var entries: [SFTPNameEntry] = []
            while entries.count < Self.readdirBatch, let ent = readdir(dir) {
                let name = withUnsafePointer(to: &ent.pointee.d_name) {
                    String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
                }
                var st = stat()
                guard lstat(dirHost + "/" + name, &st) == 0 else { continue }
                entries.append(SFTPNameEntry(filename: name, longname: longNames.format(name: name, st: st),
                                             attributes: Self.attributes(st)))
            }
            if entries.isEmpty { throw .status(.eof, "End of file") }
            return .name(id: id, entries: entries)

        case .remove(_, let path):
            try Self.check(unlink(try host(path, followFinal: false, modifying: true)), "remove")
            return Self.ok(id)

        case .mkdir(_, let path, let attrs):
            let mode = mode_t((attrs.permissions ?? 0o777) & 0o7777)
            try Self.check(mkdir(try host(path, followFinal: false, modifying: true), mode), "mkdir")
            return Self.ok(id)

        case .rmdir(_, let path):
            try Self.check(rmdir(try host(path, followFinal: false, modifying: true)), "rmdir")
            return Self.ok(id)

        case .realpath(_, let path):
            let p = try virtualRealpath(path)
            return .name(id: id, entries: [SFTPNameEntry(filename: p, longname: p, attributes: SFTPAttributes())])

        case .rename(_, let oldPath, let newPath):
            // Draft semantics: fail if the target exists (racy check, as in OpenSSH's fallback path).
            let from = try host(oldPath, followFinal: false, modifying: true)
            let to = try host(newPath, followFinal: false, modifying: true)
            var st = stat()
            if lstat(to, &st) == 0 { throw .io(EEXIST, "rename") }
            try Self.check(rename(from, to), "rename")
            return Self.ok(id)

        case .readlink(_, let path):
            let target = try (resolver ?? SFTPPathResolver(root: "/")).readLink(try host(path, followFinal: false))
            return .name(id: id, entries: [SFTPNameEntry(filename: target, longname: target, attributes: SFTPAttributes())])

        case .symlink(_, let first, let second):
            let (target, linkPath) = symlinkOrder == .targetFirst ? (first, second) : (second, first)
            if target.utf8.contains(0) { throw .status(.badMessage, "target contains NUL byte") }
            let link = try host(linkPath, followFinal: false, modifying: true)
            if let resolver {
                let comps = try resolver.resolve(linkPath, followFinal: false)
                guard SFTPPathResolver.relativeTargetStaysInside(target, directory: Array(comps.dropLast())) else {
                    throw .status(.permissionDenied, "symlink target must be relative and stay inside the root")
                }
            }
            try Self.check(symlink(target, link), "symlink")
            return Self.ok(id)

        case .extended(_, let name, let data):
            return try extended(name: name, data: data, id: id)

        case .initialize, .version, .status, .handle, .data, .name, .attrs, .extendedReply:
            throw .status(.badMessage, "unexpected \(message.type) message from client")
        }
    }

    private func extended(name: String, data: [UInt8], id: UInt32) throws(SFTPError) -> SFTPMessage {
        var r = SFTPWireReader(data[...])
        switch name {
        case "posix-rename@openssh.com":
            let from = try host(try r.string(), followFinal: false, modifying: true)
            let to = try host(try r.string(), followFinal: false, modifying: true)
            try Self.check(rename(from, to), "rename")
            return Self.ok(id)
        case "hardlink@openssh.com":
            let from = try host(try r.string(), followFinal: false)
            let to = try host(try r.string(), followFinal: false, modifying: true)
            try Self.check(link(from, to), "link")
            return Self.ok(id)
        case "fsync@openssh.com":
            try Self.check(fsync(try fileDescriptor(try r.data())), "fsync")
            return Self.ok(id)
        case "statvfs@openssh.com", "fstatvfs@openssh.com":
            var s = statvfs()
            if name == "statvfs@openssh.com" {
                try Self.check(statvfs(try host(try r.string(), followFinal: true), &s), "statvfs")
            } else {
                try Self.check(fstatvfs(try fileDescriptor(try r.data(), allowDirectory: true), &s), "fstatvfs")
            }
            var v = SFTPStatVFS()
            v.blockSize = UInt64(s.f_bsize); v.fragmentSize = UInt64(s.f_frsize); v.blocks = UInt64(s.f_blocks)
            v.freeBlocks = UInt64(s.f_bfree); v.availableBlocks = UInt64(s.f_bavail); v.files = UInt64(s.f_files)
            v.freeFiles = UInt64(s.f_ffree); v.availableFiles = UInt64(s.f_favail); v.fsid = UInt64(s.f_fsid)
            v.flags = UInt64(s.f_flag) & 3; v.maxNameLength = UInt64(s.f_namemax)
            var w = SFTPWireWriter()
            v.encode(into: &w)
            return .extendedReply(id: id, data: w.bytes)
        case "limits@openssh.com":
            var w = SFTPWireWriter()
            Self.limits.encode(into: &w)
            return .extendedReply(id: id, data: w.bytes)
        default:
            throw .status(.opUnsupported, "unsupported extension \(name)")
        }
    }
}
