import Foundation
import Testing
@testable import QSFTP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Layout: outer/secret ("SECRET"), outer/sdir/, outer/root/ (the server root) with root/file ("INSIDE").
final class Jail {
    let outer: TempDir
    let root: String
    let server: SFTPServer
    private var lastID: UInt32 = 0
    static let secret = Array("SECRET".utf8)

    init() throws {
        outer = try TempDir()
        try outer.write("secret", Self.secret)
        try outer.mkdir("sdir")
        try outer.write("sdir/secret2", Self.secret)
        try outer.mkdir("root")
        try outer.write("root/file", Array("INSIDE".utf8))
        root = outer.sub("root")
        server = SFTPServer(root: root)
    }

    func send(_ make: (UInt32) -> SFTPMessage) throws -> SFTPMessage {
        lastID += 1
        let reply = try exchange(server, make(lastID))
        #expect(reply.requestID == lastID)
        return reply
    }

    func status(_ make: (UInt32) -> SFTPMessage) throws -> SFTPStatus? { statusCode(try send(make)) }

    func ext(_ name: String, _ a: String, _ b: String) throws -> SFTPStatus? {
        var w = SFTPWireWriter()
        w.string(a); w.string(b)
        return statusCode(try send { .extended(id: $0, name: name, data: w.bytes) })
    }

    /// Reads a whole file through the server, or returns the failure status.
    func readAll(_ path: String) throws -> Result<[UInt8], SFTPErrorBox> {
        let r = try send { .open(id: $0, path: path, flags: .read, attributes: SFTPAttributes()) }
        guard let h = handleBytes(r) else { return .failure(SFTPErrorBox(status: statusCode(r))) }
        defer { _ = try? send { .close(id: $0, handle: h) } }
        var out: [UInt8] = []
        while case .data(_, let d) = try send({ .read(id: $0, handle: h, offset: UInt64(out.count), length: 65536) }) {
            out += d
        }
        return .success(out)
    }

    func realpath(_ path: String) throws -> String? {
        names(try send { .realpath(id: $0, path: path) })?.first?.filename
    }

    /// The outside world is untouched.
    func checkOutsideIntact() throws {
        #expect(try outer.read("secret") == Self.secret)
        #expect(try outer.read("sdir/secret2") == Self.secret)
        let entries = Set(try FileManager.default.contentsOfDirectory(atPath: outer.path))
        #expect(entries == ["secret", "sdir", "root"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: outer.sub("sdir")) == ["secret2"])
    }
}

struct SFTPErrorBox: Error, Equatable { var status: SFTPStatus? }

@Suite struct ConfinementTests {
    static let escapes = ["../secret", "../../secret", "/../secret", "/../../../../secret", "..//secret",
                          "./../secret", "file/../../secret", "nonexistent/../../secret", "%2e%2e/secret", "../sdir/secret2"]

    @Test func dotDotCannotEscape() throws {
        let j = try Jail()
        for p in Self.escapes {
            switch try j.readAll(p) {
            case .success(let d): Issue.record("\(p) opened: \(d)")
            case .failure(let e): #expect(e.status == .noSuchFile, "\(p)")
            }
            #expect(try j.status { .stat(id: $0, path: p) } == .noSuchFile, "\(p)")
        }
        #expect(try j.realpath("..") == "/")
        #expect(try j.realpath("/../..") == "/")
        #expect(try j.realpath("../file") == "/file")
        #expect(try j.readAll("../../file") == .success(Array("INSIDE".utf8)))
        try j.checkOutsideIntact()
    }

    @Test func absoluteHostPathsAreInsideRoot() throws {
        let j = try Jail()
        #expect(try j.status { .stat(id: $0, path: j.outer.sub("secret")) } == .noSuchFile)
        #expect(try j.status { .stat(id: $0, path: "/etc/passwd") } == .noSuchFile)
        // Make the same absolute path exist inside the root: that is what gets opened.
        try FileManager.default.createDirectory(atPath: j.root + j.outer.path, withIntermediateDirectories: true)
        try Data("SHADOW".utf8).write(to: URL(fileURLWithPath: j.root + j.outer.sub("secret")))
        #expect(try j.readAll(j.outer.sub("secret")) == .success(Array("SHADOW".utf8)))
        try j.checkOutsideIntact()
    }

    @Test func symlinksToOutsideResolveInsideRoot() throws {
        let j = try Jail()
        try j.outer.makeSymlink(j.outer.sub("secret"), "root/abs")      // absolute target outside
        try j.outer.makeSymlink("../secret", "root/rel")               // relative target outside
        try j.outer.makeSymlink("../../../../../../secret", "root/deep")
        try j.outer.makeSymlink(j.outer.sub("sdir"), "root/dirlink")    // directory link outside
        try j.outer.makeSymlink("/", "root/slash")
        for p in ["abs", "rel", "deep", "dirlink/secret2", "slash/../secret", "/dirlink/../secret"] {
            switch try j.readAll(p) {
            case .success(let d): Issue.record("\(p) opened: \(String(decoding: d, as: UTF8.self))")
            case .failure(let e): #expect(e.status == .noSuchFile, "\(p)")
            }
        }
        // stat follows the link inside the root: "rel" → /secret inside root (missing).
        #expect(try j.status { .stat(id: $0, path: "rel") } == .noSuchFile)
        #expect(try j.realpath("rel") == "/secret")
        #expect(try j.status { .realpath(id: $0, path: "abs") } == .noSuchFile)   // /tmp/... does not exist inside
        #expect(try j.realpath("slash") == "/")
        // lstat of the link itself is fine (it is inside the root).
        #expect(try attrs(j.send { .lstat(id: $0, path: "abs") })?.isSymlink == true)
        // Once a file exists at the in-root interpretation, the link reaches it.
        try j.outer.write("root/secret", Array("INNER".utf8))
        try FileManager.default.createDirectory(atPath: j.root + j.outer.path, withIntermediateDirectories: true)
        #expect(try j.realpath("abs") == j.outer.sub("secret"))   // path as seen inside the root
        #expect(try j.readAll("rel") == .success(Array("INNER".utf8)))
        #expect(try j.readAll("deep") == .success(Array("INNER".utf8)))
        #expect(try j.readAll("slash/secret") == .success(Array("INNER".utf8)))
        // Listing a directory link that points outside lists the in-root interpretation.
        #expect(try j.status { .opendir(id: $0, path: "dirlink") } == .noSuchFile)
        try j.checkOutsideIntact()
    }

    @Test func symlinkLoopsFail() throws {
        let j = try Jail()
        try j.outer.makeSymlink("loop2", "root/loop1")
        try j.outer.makeSymlink("loop1", "root/loop2")
        try j.outer.makeSymlink("self", "root/self")
        try j.outer.makeSymlink("chain/x", "root/chain")
        for p in ["loop1", "loop2", "self", "self/x", "chain", "loop1/../file"] {
            let s = try j.status { .stat(id: $0, path: p) }
            #expect(s != nil && s != .ok, "\(p)")
            #expect(try j.status { .open(id: $0, path: p, flags: [.write, .create], attributes: SFTPAttributes()) } != .handle, "\(p)")
            #expect(try j.status { .realpath(id: $0, path: p) } != nil, "\(p)")
        }
        try j.checkOutsideIntact()
    }

    @Test func mutationsCannotEscape() throws {
        let j = try Jail()
        try j.outer.makeSymlink(j.outer.sub("sdir"), "root/dirlink")
        try j.outer.makeSymlink("../sdir", "root/reldir")
        // rename / posix-rename: sources and targets outside are reinterpreted inside.
        #expect(try j.status { .rename(id: $0, oldPath: "../secret", newPath: "stolen") } == .noSuchFile)
        #expect(try j.ext("posix-rename@openssh.com", "../sdir/secret2", "stolen") == .noSuchFile)
        #expect(try j.status { .rename(id: $0, oldPath: "file", newPath: "../moved") } == .ok)
        #expect(j.outer.exists("root/moved"))
        #expect(try j.ext("posix-rename@openssh.com", "moved", "dirlink/moved") == .noSuchFile)
        #expect(try j.ext("posix-rename@openssh.com", "moved", "reldir/moved") == .noSuchFile)
        #expect(try j.ext("posix-rename@openssh.com", "moved", "/../../file") == .ok)
        #expect(j.outer.exists("root/file"))
        // hardlink: neither the existing nor the new path may be outside.
        #expect(try j.ext("hardlink@openssh.com", "../secret", "h") == .noSuchFile)
        #expect(try j.ext("hardlink@openssh.com", "file", "../h") == .ok)
        #expect(j.outer.exists("root/h"))
        #expect(try j.ext("hardlink@openssh.com", "file", "dirlink/h") == .noSuchFile)
        // symlink: link path inside, targets must stay relative and inside.
        #expect(try j.status { .symlink(id: $0, target: "/etc/passwd", linkPath: "s1") } == .permissionDenied)
        #expect(try j.status { .symlink(id: $0, target: "../secret", linkPath: "s2") } == .permissionDenied)
        #expect(try j.status { .symlink(id: $0, target: "a/../../x", linkPath: "s3") } == .permissionDenied)
        #expect(try j.status { .symlink(id: $0, target: "file", linkPath: "../s4") } == .ok)
        #expect(j.outer.exists("root/s4"))
        #expect(try j.status { .symlink(id: $0, target: "file", linkPath: "dirlink/s5") } == .noSuchFile)
        // create / mkdir / remove / rmdir / setstat through escapes.
        #expect(try j.status { .open(id: $0, path: "../created", flags: [.write, .create], attributes: SFTPAttributes()) } == nil)
        #expect(j.outer.exists("root/created"))
        #expect(try j.status { .open(id: $0, path: "dirlink/created", flags: [.write, .create], attributes: SFTPAttributes()) } == .noSuchFile)
        #expect(try j.status { .mkdir(id: $0, path: "../../newdir", attributes: SFTPAttributes()) } == .ok)
        #expect(j.outer.exists("root/newdir"))
        #expect(try j.status { .remove(id: $0, path: "../secret") } == .noSuchFile)
        #expect(try j.status { .remove(id: $0, path: "dirlink/secret2") } == .noSuchFile)
        #expect(try j.status { .rmdir(id: $0, path: "../sdir") } == .noSuchFile)
        #expect(try j.status { .setstat(id: $0, path: "../secret", attributes: SFTPAttributes(size: 0)) } == .noSuchFile)
        #expect(try j.status { .setstat(id: $0, path: "dirlink/secret2", attributes: SFTPAttributes(size: 0)) } == .noSuchFile)
        var w = SFTPWireWriter()
        w.string("dirlink")
        #expect(try statusCode(j.send { .extended(id: $0, name: "statvfs@openssh.com", data: w.bytes) }) == .noSuchFile)
        // Writing through a dangling in-root link creates the file inside the root.
        try j.outer.makeSymlink(j.outer.sub("evil"), "root/dangling")
        #expect(try j.status { .open(id: $0, path: "dangling", flags: [.write, .create], attributes: SFTPAttributes()) } == .noSuchFile)
        try FileManager.default.createDirectory(atPath: j.root + j.outer.path, withIntermediateDirectories: true)
        let r = try j.send { .open(id: $0, path: "dangling", flags: [.write, .create], attributes: SFTPAttributes()) }
        #expect(r.type == .handle)
        #expect(j.outer.exists("root" + j.outer.sub("evil")))
        try j.checkOutsideIntact()
    }

    @Test func rootItselfIsProtected() throws {
        let j = try Jail()
        for p in ["/", ".", "..", "", "/../.."] {
            #expect(try j.status { .rmdir(id: $0, path: p) } == .permissionDenied, "\(p)")
            #expect(try j.status { .remove(id: $0, path: p) } == .permissionDenied, "\(p)")
            #expect(try j.status { .rename(id: $0, oldPath: p, newPath: "x") } == .permissionDenied, "\(p)")
        }
        #expect(FileManager.default.fileExists(atPath: j.root))
    }

    @Test func listingDotDotListsRoot() throws {
        let j = try Jail()
        let h = try #require(handleBytes(try j.send { .opendir(id: $0, path: "../..") }))
        let entries = try #require(names(try j.send { .readdir(id: $0, handle: h) })).map(\.filename)
        #expect(Set(entries) == [".", "..", "file"])
    }

    @Test func posixSymlinkThenDotDotSemantics() throws {
        let j = try Jail()
        try j.outer.mkdir("root/a/b")
        try j.outer.makeSymlink("a/b", "root/l")
        #expect(try j.realpath("l/..") == "/a")          // the link is followed before ".."
        #expect(try j.realpath("l/../../..") == "/")
    }

    @Test func nulBytesAreRejected() throws {
        let j = try Jail()
        #expect(try j.status { .stat(id: $0, path: "file\0/../../secret") } == .badMessage)
        #expect(try j.status { .symlink(id: $0, target: "a\0b", linkPath: "x") } == .badMessage)
    }

    @Test func rootGivenThroughSymlinkIsCanonicalised() throws {
        let j = try Jail()
        try j.outer.makeSymlink("root", "rootlink")
        let s = SFTPServer(root: j.outer.sub("rootlink"))
        #expect(s.root == j.root)
        #expect(try names(exchange(s, .realpath(id: 1, path: "file")))?.first?.filename == "/file")
    }
}

extension SFTPStatus {
    /// Sentinel used in expectations: "the reply was a HANDLE, not a status".
    static let handle = SFTPStatus(rawValue: 0xFFFF_FFFF)
}
