import Foundation
import Testing
@testable import QSFTP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A server core over a temp directory with request-id bookkeeping.
final class ServerHarness {
    let dir: TempDir
    let server: SFTPServer
    private var lastID: UInt32 = 100

    init(confined: Bool = true) throws {
        dir = try TempDir()
        server = SFTPServer(root: confined ? dir.path : nil)
    }

    /// Client path for a name: relative-to-root when confined, absolute host path otherwise.
    func p(_ name: String) -> String { server.root == nil ? dir.sub(name) : "/" + name }

    func send(_ make: (UInt32) -> SFTPMessage) throws -> SFTPMessage {
        lastID += 1
        let reply = try exchange(server, make(lastID))
        #expect(reply.requestID == lastID)
        #expect(reply.isResponse)
        return reply
    }

    func status(_ make: (UInt32) -> SFTPMessage) throws -> SFTPStatus? { statusCode(try send(make)) }

    func open(_ path: String, _ flags: SFTPOpenFlags, perms: UInt32? = nil) throws -> [UInt8] {
        try #require(handleBytes(try send { .open(id: $0, path: path, flags: flags, attributes: SFTPAttributes(permissions: perms)) }))
    }

    func extended(_ name: String, _ fill: (inout SFTPWireWriter) -> Void) throws -> SFTPMessage {
        var w = SFTPWireWriter()
        fill(&w)
        return try send { .extended(id: $0, name: name, data: w.bytes) }
    }
}

@Suite struct ServerTests {
    @Test func initAnswersVersionWithExtensions() throws {
        let s = SFTPServer()
        let reply = try exchange(s, .initialize(version: 3, extensions: []))
        guard case .version(let v, let exts) = reply else { Issue.record("got \(reply)"); return }
        #expect(v == 3)
        let names = Set(exts.map(\.name))
        for n in ["posix-rename@openssh.com", "statvfs@openssh.com", "fstatvfs@openssh.com", "fsync@openssh.com",
                  "hardlink@openssh.com", "limits@openssh.com"] { #expect(names.contains(n)) }
    }

    @Test(arguments: [true, false])
    func openWriteReadClose(confined: Bool) throws {
        let h = try ServerHarness(confined: confined)
        let w = try h.open(h.p("f"), [.write, .create, .truncate], perms: 0o640)
        #expect(try h.status { .write(id: $0, handle: w, offset: 0, data: Array("hello".utf8)) } == .ok)
        #expect(try h.status { .write(id: $0, handle: w, offset: 10, data: Array("world".utf8)) } == .ok)
        #expect(try h.status { .close(id: $0, handle: w) } == .ok)
        #expect(try h.dir.read("f") == Array("hello".utf8) + [0, 0, 0, 0, 0] + Array("world".utf8))

        let r = try h.open(h.p("f"), .read)
        let data = try h.send { .read(id: $0, handle: r, offset: 3, length: 100) }
        #expect(data.type == .data)
        if case .data(_, let d) = data { #expect(d == Array("lo".utf8) + [0, 0, 0, 0, 0] + Array("world".utf8)) }
        #expect(try h.status { .read(id: $0, handle: r, offset: 15, length: 100) } == .eof)
        let a = try #require(attrs(try h.send { .fstat(id: $0, handle: r) }))
        #expect(a.size == 15)
        #expect(a.permissions.map { $0 & 0o777 } == 0o640 & ~UInt32(umaskValue()))
        #expect(try h.status { .close(id: $0, handle: r) } == .ok)
        #expect(try h.status { .close(id: $0, handle: r) } == .failure)   // stale handle
        #expect(h.server.openHandleCount == 0)
    }

    @Test func openFlagsSemantics() throws {
        let h = try ServerHarness()
        #expect(try h.status { .open(id: $0, path: "/missing", flags: .read, attributes: SFTPAttributes()) } == .noSuchFile)
        try h.dir.write("x", [1, 2, 3])
        #expect(try h.status { .open(id: $0, path: "/x", flags: [.write, .create, .exclusive], attributes: SFTPAttributes()) } == .failure)
        let a = try h.open("/x", [.write, .append])
        #expect(try h.status { .write(id: $0, handle: a, offset: 0, data: [4]) } == .ok)
        _ = try h.send { .close(id: $0, handle: a) }
        #expect(try h.dir.read("x") == [1, 2, 3, 4])
        let t = try h.open("/x", [.write, .truncate])
        _ = try h.send { .close(id: $0, handle: t) }
        #expect(try h.dir.read("x") == [])
        // Writing to a read-only handle fails.
        let r = try h.open("/x", .read)
        #expect(try h.status { .write(id: $0, handle: r, offset: 0, data: [1]) } == .noSuchFile)  // EBADF → NO_SUCH_FILE (OpenSSH mapping)
    }

    @Test func readIsCappedAt256KiB() throws {
        let h = try ServerHarness()
        try h.dir.write("big", randomBytes(300_000, seed: 1))
        let r = try h.open("/big", .read)
        guard case .data(_, let d) = try h.send({ .read(id: $0, handle: r, offset: 0, length: 10_000_000) }) else {
            Issue.record("no data"); return
        }
        #expect(d.count == 256 * 1024)
        #expect(d == Array(try h.dir.read("big")[0..<(256 * 1024)]))
    }

    @Test func statLstatSetstat() throws {
        let h = try ServerHarness()
        try h.dir.write("f", [1, 2, 3, 4, 5])
        try h.dir.makeSymlink("f", "l")
        let st = try #require(attrs(try h.send { .stat(id: $0, path: "/l") }))
        #expect(st.isRegularFile && st.size == 5)
        let lst = try #require(attrs(try h.send { .lstat(id: $0, path: "/l") }))
        #expect(lst.isSymlink)
        #expect(try h.status { .stat(id: $0, path: "/nope") } == .noSuchFile)

        #expect(try h.status { .setstat(id: $0, path: "/f", attributes: SFTPAttributes(size: 2, permissions: 0o600, atime: 1000, mtime: 2000)) } == .ok)
        let after = try #require(attrs(try h.send { .stat(id: $0, path: "/f") }))
        #expect(after.size == 2)
        #expect(after.permissions.map { $0 & 0o7777 } == 0o600)
        #expect(after.atime == 1000 && after.mtime == 2000)

        let fh = try h.open("/f", [.read, .write])
        #expect(try h.status { .fsetstat(id: $0, handle: fh, attributes: SFTPAttributes(size: 10, permissions: 0o644, atime: 3, mtime: 4)) } == .ok)
        let f2 = try #require(attrs(try h.send { .fstat(id: $0, handle: fh) }))
        #expect(f2.size == 10 && f2.permissions.map { $0 & 0o7777 } == 0o644 && f2.mtime == 4)
    }

    @Test func readdirBatchesAndLongnames() throws {
        let h = try ServerHarness()
        try h.dir.mkdir("d")
        for i in 0..<250 { try h.dir.write("d/file\(i)", Array(repeating: 1, count: i)) }
        try h.dir.mkdir("d/sub")
        let dh = try #require(handleBytes(try h.send { .opendir(id: $0, path: "/d") }))
        var seen: [String: SFTPNameEntry] = [:]
        while true {
            let reply = try h.send { .readdir(id: $0, handle: dh) }
            if statusCode(reply) == .eof { break }
            let batch = try #require(names(reply))
            #expect(batch.count <= 100 && !batch.isEmpty)
            for e in batch { seen[e.filename] = e }
        }
        #expect(seen.count == 253)   // 250 files + sub + . + ..
        let f7 = try #require(seen["file7"])
        #expect(f7.attributes.size == 7)
        #expect(f7.longname.hasPrefix("-rw"))
        #expect(f7.longname.hasSuffix(" file7"))
        #expect(f7.longname.split(separator: " ").count >= 9)
        #expect(try #require(seen["sub"]).longname.hasPrefix("d"))
        #expect(try h.status { .close(id: $0, handle: dh) } == .ok)
        #expect(try h.status { .opendir(id: $0, path: "/d/file1") } == .noSuchFile)  // ENOTDIR
    }

    @Test func longnameModeString() {
        #expect(SFTPLongName.modeString(0o100755) == "-rwxr-xr-x")
        #expect(SFTPLongName.modeString(0o041777) == "drwxrwxrwt")
        #expect(SFTPLongName.modeString(0o104644) == "-rwSr--r--")
        #expect(SFTPLongName.modeString(0o120777) == "lrwxrwxrwx")
    }

    @Test func mkdirRmdirRemove() throws {
        let h = try ServerHarness()
        #expect(try h.status { .mkdir(id: $0, path: "/d", attributes: SFTPAttributes(permissions: 0o700)) } == .ok)
        #expect(try h.status { .mkdir(id: $0, path: "/d", attributes: SFTPAttributes()) } == .failure)  // EEXIST
        #expect(try #require(attrs(try h.send { .stat(id: $0, path: "/d") })).isDirectory)
        try h.dir.write("d/f", [1])
        #expect(try h.status { .rmdir(id: $0, path: "/d") } == .failure)   // ENOTEMPTY
        #expect(try h.status { .remove(id: $0, path: "/d/f") } == .ok)
        #expect(try h.status { .remove(id: $0, path: "/d/f") } == .noSuchFile)
        #expect(try h.status { .rmdir(id: $0, path: "/d") } == .ok)
        #expect(!h.dir.exists("d"))
        #expect(try h.status { .rmdir(id: $0, path: "/d") } == .noSuchFile)
    }

    @Test func renameAndPosixRename() throws {
        let h = try ServerHarness()
        try h.dir.write("a", [1]); try h.dir.write("b", [2])
        #expect(try h.status { .rename(id: $0, oldPath: "/a", newPath: "/b") } == .failure)   // target exists
        #expect(try h.dir.read("b") == [2])
        #expect(try h.status { .rename(id: $0, oldPath: "/a", newPath: "/c") } == .ok)
        #expect(try !h.dir.exists("a") && h.dir.read("c") == [1])
        let reply = try h.extended("posix-rename@openssh.com") { $0.string("/c"); $0.string("/b") }
        #expect(statusCode(reply) == .ok)
        #expect(try !h.dir.exists("c") && h.dir.read("b") == [1])
    }

    @Test func symlinkReadlinkRealpath() throws {
        let h = try ServerHarness()
        try h.dir.mkdir("dir/sub")
        try h.dir.write("dir/sub/f", [9])
        // OpenSSH order: target first, link path second.
        #expect(try h.status { .symlink(id: $0, target: "dir/sub", linkPath: "/lnk") } == .ok)
        var st = stat()
        #expect(lstat(h.dir.sub("lnk"), &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK)
        #expect(try names(h.send { .readlink(id: $0, path: "/lnk") })?.first?.filename == "dir/sub")
        #expect(try h.status { .readlink(id: $0, path: "/dir") } == .badMessage)   // EINVAL: not a link
        #expect(try names(h.send { .realpath(id: $0, path: "lnk/f") })?.first?.filename == "/dir/sub/f")
        #expect(try names(h.send { .realpath(id: $0, path: "") })?.first?.filename == "/")
        #expect(try names(h.send { .realpath(id: $0, path: "lnk/..") })?.first?.filename == "/dir")
        #expect(try names(h.send { .realpath(id: $0, path: "dir/./sub//new") })?.first?.filename == "/dir/sub/new")
        #expect(try h.status { .realpath(id: $0, path: "nope/x") } == .noSuchFile)
    }

    @Test func realpathUnconfined() throws {
        let h = try ServerHarness(confined: false)
        try h.dir.mkdir("a")
        try h.dir.makeSymlink("a", "l")
        #expect(try names(h.send { .realpath(id: $0, path: h.dir.sub("l/../l/.")) })?.first?.filename == h.dir.sub("a"))
        let cwd = FileManager.default.currentDirectoryPath
        #expect(try names(h.send { .realpath(id: $0, path: ".") })?.first?.filename == URL(fileURLWithPath: cwd).resolvingSymlinksInPath().path)
    }

    @Test func hardlink() throws {
        let h = try ServerHarness()
        try h.dir.write("f", [1, 2])
        #expect(statusCode(try h.extended("hardlink@openssh.com") { $0.string("/f"); $0.string("/g") }) == .ok)
        var a = stat(), b = stat()
        #expect(stat(h.dir.sub("f"), &a) == 0 && stat(h.dir.sub("g"), &b) == 0)
        #expect(a.st_ino == b.st_ino && a.st_nlink == 2)
        #expect(statusCode(try h.extended("hardlink@openssh.com") { $0.string("/f"); $0.string("/g") }) == .failure)
    }

    @Test func statvfsFsyncLimits() throws {
        let h = try ServerHarness()
        let reply = try h.extended("statvfs@openssh.com") { $0.string("/") }
        guard case .extendedReply(_, let data) = reply else { Issue.record("\(reply)"); return }
        var r = SFTPWireReader(data[...])
        let v = try SFTPStatVFS(from: &r)
        #expect(v.blockSize > 0 && v.maxNameLength > 0 && r.remaining == 0)

        let fh = try h.open("/f", [.write, .create])
        let fv = try h.extended("fstatvfs@openssh.com") { $0.data(fh) }
        if case .extendedReply(_, let d2) = fv {
            var r2 = SFTPWireReader(d2[...])
            #expect(try SFTPStatVFS(from: &r2).fsid == v.fsid)
        } else { Issue.record("fstatvfs: \(fv)") }
        #expect(statusCode(try h.extended("fsync@openssh.com") { $0.data(fh) }) == .ok)
        #expect(statusCode(try h.extended("fsync@openssh.com") { $0.data([9, 9]) }) == .failure)

        guard case .extendedReply(_, let ld) = try h.extended("limits@openssh.com", { _ in }) else { Issue.record("limits"); return }
        var lr = SFTPWireReader(ld[...])
        let limits = try SFTPLimits(from: &lr)
        #expect(limits == SFTPServer.limits)
        #expect(limits.maxReadLength == 256 * 1024 && limits.maxOpenHandles == 256)
    }

    @Test func badRequestsGetStatusWithID() throws {
        let s = SFTPServer()
        // Known type, truncated payload → BAD_MESSAGE with the id.
        var reply = try decodePacket(s.handle([17, 0, 0, 0, 42, 0, 0]))
        #expect(reply == .status(id: 42, code: .badMessage, message: reply.statusMessage, language: ""))
        // Unknown type → OP_UNSUPPORTED with the id.
        reply = try decodePacket(s.handle([77, 0, 0, 1, 0, 1, 2, 3]))
        #expect(statusCode(reply) == .opUnsupported && reply.requestID == 256)
        // Too short to carry an id → id 0.
        reply = try decodePacket(s.handle([5, 1]))
        #expect(statusCode(reply) == .badMessage && reply.requestID == 0)
        // Unknown extension → OP_UNSUPPORTED.
        reply = try exchange(s, .extended(id: 7, name: "nope@example.com", data: []))
        #expect(statusCode(reply) == .opUnsupported && reply.requestID == 7)
        // A response type sent to the server.
        reply = try exchange(s, .handle(id: 8, handle: [1]))
        #expect(statusCode(reply) == .badMessage && reply.requestID == 8)
        // Extension with malformed payload.
        reply = try exchange(s, .extended(id: 9, name: "posix-rename@openssh.com", data: [0, 0]))
        #expect(statusCode(reply) == .badMessage && reply.requestID == 9)
        // Offsets beyond off_t.
        let h = try ServerHarness()
        let fh = try h.open("/f", [.read, .write, .create])
        #expect(try h.status { .read(id: $0, handle: fh, offset: .max, length: 10) } == .badMessage)
    }

    @Test func handleLimitAndCloseAll() throws {
        let h = try ServerHarness()
        try h.dir.write("f", [1])
        for _ in 0..<SFTPServer.maxHandles { _ = try h.open("/f", .read) }
        #expect(try h.status { .open(id: $0, path: "/f", flags: .read, attributes: SFTPAttributes()) } == .failure)
        #expect(try h.status { .opendir(id: $0, path: "/") } == .failure)
        #expect(h.server.openHandleCount == SFTPServer.maxHandles)
        h.server.closeAll()
        #expect(h.server.openHandleCount == 0)
        _ = try h.open("/f", .read)
    }

    @Test func errnoMapping() {
        #expect(SFTPServer.statusCode(errno: ENOENT) == .noSuchFile)
        #expect(SFTPServer.statusCode(errno: ENOTDIR) == .noSuchFile)
        #expect(SFTPServer.statusCode(errno: EACCES) == .permissionDenied)
        #expect(SFTPServer.statusCode(errno: EPERM) == .permissionDenied)
        #expect(SFTPServer.statusCode(errno: ENOSYS) == .opUnsupported)
        #expect(SFTPServer.statusCode(errno: EEXIST) == .failure)
        #expect(SFTPServer.statusCode(errno: ENOSPC) == .failure)
    }

    @Test(.enabled(if: getuid() != 0, "root ignores file permissions"))
    func permissionDenied() throws {
        let h = try ServerHarness()
        try h.dir.write("f", [1])
        _ = chmod(h.dir.sub("f"), 0)
        #expect(try h.status { .open(id: $0, path: "/f", flags: .read, attributes: SFTPAttributes()) } == .permissionDenied)
    }
}

func umaskValue() -> mode_t {
    let m = umask(0o022)
    umask(m)
    return m
}

extension SFTPMessage {
    var statusMessage: String {
        if case .status(_, _, let m, _) = self { return m }
        return ""
    }
}
