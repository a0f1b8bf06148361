import Foundation
import Testing
@testable import QSFTP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Opens a local file for the transfer helpers; closed by the caller.
func openLocal(_ path: String, _ flags: Int32 = O_RDWR | O_CREAT) throws -> CInt {
    let fd = open(path, flags | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw SFTPError.io(errno, "open \(path)") }
    return fd
}

@Suite struct ClientTests {
    @Test(arguments: [0, 1, 32767, 32768, 32769, 8 * 1024 * 1024 + 12345])
    func uploadDownloadRoundTrip(size: Int) throws {
        let dir = try TempDir()
        try dir.mkdir("remote")
        let original = randomBytes(size, seed: UInt64(size) + 1)
        try dir.write("src", original)
        try withClient(root: dir.sub("remote")) { c in
            let src = try openLocal(dir.sub("src"), O_RDONLY)
            defer { close(src) }
            var lastProgress: UInt64 = 0
            let up = try c.upload(from: src, to: "/copy", permissions: 0o600) { lastProgress = $0 }
            #expect(up == UInt64(size) && lastProgress == UInt64(size))
            #expect(try c.stat("/copy").size == UInt64(size))
            #expect(try dir.read("remote/copy") == original)

            let dst = try openLocal(dir.sub("dst"), O_RDWR | O_CREAT | O_TRUNC)
            defer { close(dst) }
            let down = try c.download(remotePath: "copy", to: dst)
            #expect(down == UInt64(size))
            #expect(try dir.read("dst") == original)
        }
    }

    @Test func unconfinedAbsolutePaths() throws {
        let dir = try TempDir()
        let original = randomBytes(100_000, seed: 9)
        try dir.write("src", original)
        try withClient(root: nil) { c in
            #expect(try c.realpath(dir.path) == dir.path)
            let src = try openLocal(dir.sub("src"), O_RDONLY)
            defer { close(src) }
            try c.upload(from: src, to: dir.sub("dst"))
            #expect(try c.listDirectory(dir.path).map(\.filename).sorted() == ["dst", "src"])
        }
        #expect(try dir.read("dst") == original)
    }

    @Test func smallChunksManyInFlight() throws {
        let dir = try TempDir()
        let original = randomBytes(1_000_003, seed: 7)
        try dir.write("src", original)
        try withClient(root: dir.path) { c in
            c.transferChunkSize = 1000
            c.maxRequestsInFlight = 200
            let src = try openLocal(dir.sub("src"), O_RDONLY)
            defer { close(src) }
            try c.upload(from: src, to: "up")
            let dst = try openLocal(dir.sub("down"))
            defer { close(dst) }
            try c.download(remotePath: "up", to: dst)
        }
        #expect(try dir.read("up") == original)
        #expect(try dir.read("down") == original)
    }

    @Test func resumeDownloadAndUpload() throws {
        let dir = try TempDir()
        let original = randomBytes(1_234_567, seed: 11)
        try dir.write("full", original)
        try dir.write("partial", Array(original[0..<300_000]))
        try dir.write("remote-partial", Array(original[0..<500_000]))
        try withClient(root: dir.path) { c in
            let dst = try openLocal(dir.sub("partial"))
            defer { close(dst) }
            let n = try c.download(remotePath: "full", to: dst, offset: 300_000)
            #expect(n == UInt64(original.count - 300_000))

            let src = try openLocal(dir.sub("full"), O_RDONLY)
            defer { close(src) }
            let m = try c.upload(from: src, localOffset: 500_000, to: "remote-partial", remoteOffset: 500_000, flags: [.write, .create])
            #expect(m == UInt64(original.count - 500_000))
            // Resuming a complete file transfers nothing.
            #expect(try c.download(remotePath: "full", to: dst, offset: UInt64(original.count)) == 0)
        }
        #expect(try dir.read("partial") == original)
        #expect(try dir.read("remote-partial") == original)
    }

    @Test func oddNamesListing() throws {
        let dir = try TempDir()
        let odd = ["with space", "ünïcödé ✓", "-leading-dash", "--", "tab\there", "new\nline", " lead", "trail ",
                   "日本語", "a\"quote'", "*glob?[x]"]
        try withClient(root: dir.path) { c in
            try c.mkdir("odd dir")
            for name in odd {
                let h = try c.open("odd dir/" + name, flags: [.write, .create])
                try c.write(h, offset: 0, data: Array(name.utf8))
                try c.close(h)
            }
            try c.mkdir("odd dir/-sub dir-")
            let entries = try c.listDirectory("odd dir")
            #expect(Set(entries.map(\.filename)) == Set(odd + ["-sub dir-"]))
            for e in entries where e.filename != "-sub dir-" {
                #expect(e.attributes.size == UInt64(e.filename.utf8.count))
                #expect(e.longname.hasSuffix(e.filename))
            }
            #expect(try c.listDirectory("odd dir", includeDotEntries: true).count == odd.count + 3)
            #expect(try c.listDirectory("/odd dir/-sub dir-").isEmpty)
        }
        for name in odd { #expect(try dir.read("odd dir/" + name) == Array(name.utf8)) }
    }

    @Test func pathOperations() throws {
        let dir = try TempDir()
        try withClient(root: dir.path) { c in
            #expect(c.serverVersion == 3)
            #expect(c.limits == SFTPServer.limits)
            #expect(c.extensions["posix-rename@openssh.com"] == "1")
            #expect(try c.realpath(".") == "/")
            #expect(try c.realpath("nothere") == "/nothere")
            try c.mkdir("d", permissions: 0o750)
            #expect(try c.realpath("d/../d/./x") == "/d/x")
            #expect(try c.stat("d").isDirectory)
            let h = try c.open("d/f", flags: [.read, .write, .create])
            try c.write(h, offset: 0, data: [1, 2, 3, 4, 5])
            #expect(try c.read(h, offset: 1, length: 3) == [2, 3, 4])
            #expect(try c.read(h, offset: 5, length: 3) == nil)
            #expect(try c.fstat(h).size == 5)
            try c.fsetstat(h, SFTPAttributes(size: 3))
            try c.fsync(h)
            #expect(try c.fstatvfs(h).blockSize > 0)
            try c.close(h)
            #expect(try c.stat("d/f").size == 3)
            try c.setPermissions("d/f", 0o600)
            try c.setTimes("d/f", atime: 111, mtime: 222)
            let a = try c.stat("d/f")
            #expect(a.permissions.map { $0 & 0o777 } == 0o600 && a.mtime == 222 && a.atime == 111)
            try c.symlink(target: "d/f", linkPath: "link")
            #expect(try c.readlink("link") == "d/f")
            #expect(try c.lstat("link").isSymlink)
            #expect(try c.stat("link").isRegularFile)
            try c.hardlink(existingPath: "d/f", newPath: "hard")
            #expect(try c.stat("hard").size == 3)
            try c.remove("hard")   // (rename(2) between two links of one inode is a no-op, so use a new file)
            try c.close(try c.open("other", flags: [.write, .create]))
            #expect(throws: SFTPError.self) { try c.rename(from: "other", to: "d/f") }   // plain RENAME refuses to overwrite
            try c.rename(from: "other", to: "d/f", overwrite: true)
            #expect(try c.stat("d/f").size == 0)
            try c.rename(from: "d/f", to: "moved")
            #expect(try c.statvfs("/").maxNameLength > 0)
            try c.remove("moved")
            try c.remove("link")
            try c.rmdir("d")
            let left = try c.listDirectory("/").map(\.filename)
            #expect(left.isEmpty, "\(left)")
            do {
                _ = try c.stat("nope")
                Issue.record("stat of missing file succeeded")
            } catch {
                guard case .status(let code, let msg)? = error as? SFTPError else { Issue.record("\(error)"); return }
                #expect(code == .noSuchFile && !msg.isEmpty)
            }
            #expect(throws: SFTPError.self) { try c.download(remotePath: "nope", to: -1) }
            // The session is still usable after errors.
            #expect(try c.realpath("/") == "/")
        }
    }

    @Test func downloadToBadLocalFDReportsErrorAndKeepsSessionInSync() throws {
        let dir = try TempDir()
        try dir.write("f", randomBytes(500_000, seed: 3))
        try withClient(root: dir.path) { c in
            let ro = try openLocal(dir.sub("f"), O_RDONLY)   // not writable
            defer { close(ro) }
            #expect(throws: SFTPError.self) { try c.download(remotePath: "f", to: ro) }
            #expect(try c.stat("f").size == 500_000)
        }
    }

    /// A server that halves every DATA reply (short reads) and answers each batch of requests in reverse order.
    @Test func shortReadsAndOutOfOrderResponses() throws {
        let dir = try TempDir()
        let original = randomBytes(777_777, seed: 5)
        try dir.write("f", original)
        let root = dir.path
        let ps = try PipeServer { input, output in
            let server = SFTPServer(root: root)
            var reader = SFTPPacketReader()
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                guard let n = try? POSIX.readSome(input, &buf), n > 0 else { return 0 }
                reader.feed(buf[0..<n])
                var batch: [[UInt8]] = []
                while let body = try? reader.next() {
                    guard let request = try? SFTPMessage.decode(body) else { return 3 }
                    var reply = server.respond(to: request)
                    if case .data(let id, let d) = reply, d.count > 1 { reply = .data(id: id, data: Array(d.prefix(d.count / 2))) }
                    batch.append(reply.encode())
                }
                for r in batch.reversed() { guard (try? POSIX.writeAll(output, r)) != nil else { return 1 } }
            }
        }
        let c = try SFTPClient(input: ps.clientInput, output: ps.clientOutput)
        let dst = try openLocal(dir.sub("out"))
        defer { close(dst) }
        #expect(try c.download(remotePath: "f", to: dst) == UInt64(original.count))
        c.close()
        #expect(ps.finish() == 0)
        #expect(try dir.read("out") == original)
    }

    @Test func rejectsWrongVersionAndUnknownIDs() throws {
        // Server answering VERSION 4.
        let ps = try PipeServer { input, output in
            var buf = [UInt8](repeating: 0, count: 1024)
            _ = try? POSIX.readSome(input, &buf)
            _ = try? POSIX.writeAll(output, SFTPMessage.version(version: 4, extensions: []).encode())
            while let n = try? POSIX.readSome(input, &buf), n > 0 {}
            return 0
        }
        #expect(throws: SFTPError.unsupportedVersion(4)) { try SFTPClient(input: ps.clientInput, output: ps.clientOutput) }
        close(ps.clientInput); close(ps.clientOutput)
        #expect(ps.finish() == 0)

        // Server answering every request with a wrong id.
        let ps2 = try PipeServer { input, output in
            let server = SFTPServer()
            var reader = SFTPPacketReader()
            var buf = [UInt8](repeating: 0, count: 1024)
            while let n = try? POSIX.readSome(input, &buf), n > 0 {
                reader.feed(buf[0..<n])
                while let body = try? reader.next() {
                    var reply = server.handle(body)
                    if body.first == SFTPMessage.PacketType.remove.rawValue { reply = SFTPMessage.status(id: 999_999, code: .ok, message: "", language: "").encode() }
                    guard (try? POSIX.writeAll(output, reply)) != nil else { return 1 }
                }
            }
            return 0
        }
        let c = try SFTPClient(input: ps2.clientInput, output: ps2.clientOutput)
        #expect(throws: SFTPError.unknownRequestID(999_999)) { try c.remove("x") }
        c.close()
        #expect(ps2.finish() == 0)
    }

    @Test func serverGoneIsConnectionClosed() throws {
        let ps = try PipeServer { input, output in
            var buf = [UInt8](repeating: 0, count: 1024)
            _ = try? POSIX.readSome(input, &buf)
            _ = try? POSIX.writeAll(output, SFTPMessage.version(version: 3, extensions: []).encode())
            return 0   // hang up
        }
        let c = try SFTPClient(input: ps.clientInput, output: ps.clientOutput)
        #expect(c.limits == .conservative)
        // The server thread closes nothing itself; finishing it closes its ends → client sees EOF.
        let code = ps.finish()
        #expect(code == 0)
        #expect(throws: SFTPError.connectionClosed) { try c.realpath(".") }
        c.close()
    }

    @Test func serverLoopExitCodes() throws {
        // Garbage framing → exit 2.
        let ps = try PipeServer(root: nil)
        _ = try? POSIX.writeAll(ps.clientOutput, [0, 0, 0, 0])
        #expect(ps.finish() == SFTPServerLoop.exitProtocolError)
        close(ps.clientInput); close(ps.clientOutput)
        // EOF in the middle of a packet → exit 1.
        let ps2 = try PipeServer(root: nil)
        _ = try? POSIX.writeAll(ps2.clientOutput, [0, 0, 0, 9, 1])
        close(ps2.clientOutput)
        #expect(ps2.finish() == SFTPServerLoop.exitIOError)
        close(ps2.clientInput)
    }
}
