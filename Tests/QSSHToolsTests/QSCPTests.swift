import Foundation
import QNSPCrypto
import QSSHSession
import Testing

extension ToolSuites {
/// qscp and the sftp subsystem against a real qsshd on 127.0.0.1 (and OpenSSH's sftp client).
@Suite("qscp and sftp")
struct QSCPTests {
    let q = QSSHTests()

    func qscp(_ dir: String, port: Int, _ args: [String]) throws -> Tools.Result {
        try Tools.run("qscp", ["-P", "\(port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts",
                               "-o", "StrictHostKeyChecking=accept-new", "-q"] + args)
    }

    func write(_ path: String, _ bytes: [UInt8], mode: Int = 0o644) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        chmod(path, mode_t(mode))
    }

    func digest(_ path: String) -> [UInt8]? {
        guard let d = FileManager.default.contents(atPath: path) else { return nil }
        return KeyDerivation.sha256([UInt8](d))
    }

    func fileMode(_ path: String) -> Int {
        var st = stat()
        return lstat(path, &st) == 0 ? Int(st.st_mode & 0o7777) : -1
    }

    /// Every entry under `root`: relative path → (kind, mode, content digest or link target).
    func snapshot(_ root: String) -> [String: String] {
        var out: [String: String] = [:]
        guard let walker = FileManager.default.enumerator(atPath: root) else { return out }
        while let rel = walker.nextObject() as? String {
            let path = root + "/" + rel
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFLNK: out[rel] = "link -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?")
            case S_IFDIR: out[rel] = "dir \(String(st.st_mode & 0o7777, radix: 8))"
            default: out[rel] = "file \(String(st.st_mode & 0o7777, radix: 8)) \(digest(path).map { $0.prefix(8).map { String($0, radix: 16) }.joined() } ?? "?")"
            }
        }
        return out
    }

    @Test("files of 0, 1, 32767, 32768, 32769 bytes and 100 MiB go up and come back with the same hash and mode")
    func roundTrips() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try q.start(dir)
        defer { server.stop() }
        for sub in ["src", "remote", "back"] { try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true) }
        let sizes = [0, 1, 32767, 32768, 32769, 100 << 20]
        for (i, size) in sizes.enumerated() { try write(dir + "/src/f\(size)", TCP.pattern(size, seed: UInt32(i + 3)), mode: i % 2 == 0 ? 0o640 : 0o755) }
        let up = try qscp(dir, port: server.port, ["-p"] + sizes.map { dir + "/src/f\($0)" } + ["127.0.0.1:" + dir + "/remote"])
        #expect(up.status == 0, "\(up.stderr)")
        let down = try qscp(dir, port: server.port, ["-p", "127.0.0.1:" + dir + "/remote/f*", dir + "/back"])
        #expect(down.status == 0, "\(down.stderr)")
        for size in sizes {
            let original = digest(dir + "/src/f\(size)")
            #expect(original != nil)
            #expect(digest(dir + "/remote/f\(size)") == original, "upload of \(size) bytes")
            #expect(digest(dir + "/back/f\(size)") == original, "download of \(size) bytes")
            #expect(fileMode(dir + "/back/f\(size)") == fileMode(dir + "/src/f\(size)"), "mode of \(size) bytes")
        }
        // One request at a time (no pipelining) gives the same bytes.
        let serial = try qscp(dir, port: server.port, ["--requests", "1", dir + "/src/f\(100 << 20)", "127.0.0.1:" + dir + "/remote/serial"])
        #expect(serial.status == 0, "\(serial.stderr)")
        #expect(digest(dir + "/remote/serial") == digest(dir + "/src/f\(100 << 20)"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/remote").filter { $0.hasSuffix(".qscp-part") }
        #expect(leftovers.isEmpty)
    }

    @Test("a tree of 1,000 small files with symlinks and odd names (spaces, unicode, leading dash) round-trips with -r -p")
    func tree() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try q.start(dir)
        defer { server.stop() }
        let src = dir + "/tree"
        let names = ["plain", "with space", "-leading dash", "ünïcødé ✓", "tab\there", "dots..x"]
        for d in 0..<10 {
            let sub = src + "/dir \(d) \(names[d % names.count])"
            try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
            for f in 0..<100 {
                try write(sub + "/\(names[f % names.count]) \(f)", TCP.pattern(f * 37 + d, seed: UInt32(d * 1000 + f + 1)), mode: [0o644, 0o600, 0o755][f % 3])
            }
            try FileManager.default.createSymbolicLink(atPath: sub + "/link to first", withDestinationPath: "\(names[0]) 0")
            try FileManager.default.createSymbolicLink(atPath: sub + "/absolute link", withDestinationPath: "/etc/hostname")
        }
        try FileManager.default.createDirectory(atPath: dir + "/remote", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/back", withIntermediateDirectories: true)
        let up = try qscp(dir, port: server.port, ["-r", "-p", src, "127.0.0.1:" + dir + "/remote"])
        #expect(up.status == 0, "\(up.stderr)")
        let down = try qscp(dir, port: server.port, ["-r", "-p", "127.0.0.1:" + dir + "/remote/tree", dir + "/back"])
        #expect(down.status == 0, "\(down.stderr)")
        let original = snapshot(src)
        #expect(original.count == 10 + 10 * 102)
        #expect(snapshot(dir + "/remote/tree") == original)
        #expect(snapshot(dir + "/back/tree") == original)
    }

    @Test("a copy killed half-way leaves no file in the destination's place; --resume finishes it with the right hash")
    func interruptedAndResumed() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try q.start(dir)
        defer { server.stop() }
        let blob = TCP.pattern(200 << 20, seed: 99)
        try write(dir + "/big", blob)
        try FileManager.default.createDirectory(atPath: dir + "/remote", withIntermediateDirectories: true)
        let target = dir + "/remote/big", partial = dir + "/remote/.big.qscp-part"
        let args = ["-P", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts", "-o", "StrictHostKeyChecking=accept-new", "-q"]
        let copy = try ChildProcess.spawn([try Tools.path("qscp")] + args + [dir + "/big", "127.0.0.1:" + target],
                                          environment: ProcessInfo.processInfo.environment, directory: nil)
        func size(_ p: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: p)[.size]) as? NSNumber)?.intValue ?? -1 }
        try q.waitUntil("the partial file grows") { size(partial) >= 1 << 20 }
        kill(copy.pid, SIGSTOP)
        kill(copy.pid, SIGKILL)
        _ = copy.waitForExit()
        for fd in [copy.stdin, copy.stdout, copy.stderr] { close(fd) }
        #expect(!FileManager.default.fileExists(atPath: target), "a truncated file took the destination's place")
        let cut = size(partial)
        #expect(cut > 0 && cut < blob.count, "partial size \(cut)")
        let resumed = try Tools.run("qscp", args + ["-v", "--resume", dir + "/big", "127.0.0.1:" + target])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming at"), "\(resumed.stderr)")
        #expect(digest(target) == KeyDerivation.sha256(blob))
        #expect(!FileManager.default.fileExists(atPath: partial))
    }

    @Test("errors: missing source, directory without -r, a directory in the way, a full device, paths outside --sftp-root; the rest is copied, exit 1")
    func errors() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let jail = dir + "/jail"
        try FileManager.default.createDirectory(atPath: jail + "/in", withIntermediateDirectories: true)
        let server = try q.start(dir)
        defer { server.stop() }
        try write(dir + "/a", Array("alpha".utf8))
        try FileManager.default.createDirectory(atPath: dir + "/somedir", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/remote/a", withIntermediateDirectories: true)  // a directory named like the file
        try write(dir + "/b", Array("bravo".utf8))
        let mixed = try qscp(dir, port: server.port, [dir + "/missing", dir + "/somedir", dir + "/a", dir + "/b", "127.0.0.1:" + dir + "/remote"])
        #expect(mixed.status == 1)
        #expect(mixed.stderr.contains("missing: No such file"), "\(mixed.stderr)")
        #expect(mixed.stderr.contains("somedir: is a directory (use -r)"), "\(mixed.stderr)")
        #expect(mixed.stderr.contains("is a directory on the remote side; not overwritten"), "\(mixed.stderr)")
        #expect(digest(dir + "/remote/b") == KeyDerivation.sha256(Array("bravo".utf8)), "the good file was not copied")
        var st = stat()
        #expect(stat(dir + "/remote/a", &st) == 0 && st.st_mode & S_IFMT == S_IFDIR)

        if getuid() != 0 {  // root reads and writes regardless of modes
            try write(dir + "/secret", Array("s".utf8), mode: 0o000)
            let unreadable = try qscp(dir, port: server.port, [dir + "/secret", dir + "/b", "127.0.0.1:" + dir + "/remote"])
            #expect(unreadable.status == 1 && unreadable.stderr.contains("secret: Permission denied"), "\(unreadable.stderr)")
            try FileManager.default.createDirectory(atPath: dir + "/readonly", withIntermediateDirectories: true)
            chmod(dir + "/readonly", 0o555)
            let readOnly = try qscp(dir, port: server.port, [dir + "/b", "127.0.0.1:" + dir + "/readonly/b"])
            #expect(readOnly.status == 1 && readOnly.stderr.contains("ermission denied"), "\(readOnly.stderr)")
            chmod(dir + "/readonly", 0o755)
        }
        let full = try qscp(dir, port: server.port, [dir + "/a", "127.0.0.1:/dev/full"])
        #expect(full.status == 1 && full.stderr.contains("No space left"), "\(full.stderr)")
        #expect(stat("/dev/full", &st) == 0 && st.st_mode & S_IFMT == S_IFCHR, "/dev/full was replaced")

        // A confined server: nothing outside the root is read or written.
        let confined = try ServeProcess(tool: "qsshd", arguments: ["-p", "0", "-l", "127.0.0.1", "-h", dir + "/host",
                                                                 "--authorized-keys", dir + "/authorized_keys", "--sftp-root", jail])
        defer { confined.stop() }
        let inside = try qscp(dir, port: confined.port, [dir + "/a", "127.0.0.1:/in/a"])
        #expect(inside.status == 0, "\(inside.stderr)")
        #expect(digest(jail + "/in/a") == digest(dir + "/a"))
        let escapeUp = try qscp(dir, port: confined.port, [dir + "/b", "127.0.0.1:../../escaped"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/escaped") && !FileManager.default.fileExists(atPath: (dir as NSString).deletingLastPathComponent + "/escaped"))
        #expect(escapeUp.status == 0 ? FileManager.default.fileExists(atPath: jail + "/escaped") : true, "\(escapeUp.stderr)")
        try FileManager.default.createDirectory(atPath: dir + "/got", withIntermediateDirectories: true)
        let escapeDown = try qscp(dir, port: confined.port, ["127.0.0.1:/../../host", dir + "/got/"])
        #expect(escapeDown.status == 1 && !FileManager.default.fileExists(atPath: dir + "/got/host"), "\(escapeDown.stderr)")
        try FileManager.default.createSymbolicLink(atPath: jail + "/in/out", withDestinationPath: dir + "/host")
        let viaLink = try qscp(dir, port: confined.port, ["127.0.0.1:/in/out", dir + "/got/"])
        #expect(viaLink.status == 1 && !FileManager.default.fileExists(atPath: dir + "/got/out"), "\(viaLink.stderr)")
    }

    @Test("qscp and qsftp are one process: they copy with no qssh executable next to them or on PATH; -J then says what is missing")
    func oneProcess() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try q.start(dir)
        defer { server.stop() }
        let alone = dir + "/bin"
        try FileManager.default.createDirectory(atPath: alone, withIntermediateDirectories: true)
        for tool in ["qscp", "qsftp"] {
            let source = try Tools.path(tool)
            if link(source, alone + "/" + tool) != 0 { try FileManager.default.copyItem(atPath: source, toPath: alone + "/" + tool) }
        }
        #expect(!FileManager.default.fileExists(atPath: alone + "/qssh"))
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = "/usr/bin:/bin"
        let blob = TCP.pattern(3 << 20, seed: 41)
        try write(dir + "/src", blob)
        let args = ["-P", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts", "-o", "StrictHostKeyChecking=accept-new"]
        let up = try Tools.run(alone + "/qscp", args + ["-q", dir + "/src", "127.0.0.1:" + dir + "/up"], environment: environment)
        #expect(up.status == 0, "\(up.stderr)")
        #expect(digest(dir + "/up") == KeyDerivation.sha256(blob))
        try "get \(dir)/up \(dir)/down\n".write(toFile: dir + "/batch", atomically: true, encoding: .utf8)
        let down = try Tools.run(alone + "/qsftp", args + ["-b", dir + "/batch", "127.0.0.1"], environment: environment)
        #expect(down.status == 0, "\(down.stderr)")
        #expect(digest(dir + "/down") == KeyDerivation.sha256(blob))
        // Jump hops are 'qssh -W' processes: without a qssh to run, a clear error and no copy.
        let jump = try Tools.run(alone + "/qscp", args + ["-q", "-J", "127.0.0.1:\(server.port)", dir + "/src", "127.0.0.1:" + dir + "/jumped"],
                                 environment: environment)
        #expect(jump.status != 0)
        #expect(jump.stderr.contains("qssh (for -J) not found"), "\(jump.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/jumped"))
    }

    @Test("qsftp batch: mkdir, cd, put, ls -l, rename, get, chmod, rm, rmdir; a failing command ends the batch unless prefixed with '-'")
    func qsftpBatch() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try q.start(dir)
        defer { server.stop() }
        try write(dir + "/local.txt", Array("hello qsftp\n".utf8))
        let batch = """
            mkdir \(dir)/r
            cd \(dir)/r
            put \(dir)/local.txt
            ls -l
            rename local.txt "new name.txt"
            get "new name.txt" \(dir)/back.txt
            -rm does-not-exist
            chmod 600 "new name.txt"
            ls
            rm "new name.txt"
            cd ..
            rmdir r
            """
        try batch.write(toFile: dir + "/batch", atomically: true, encoding: .utf8)
        let args = ["-P", "\(server.port)", "-i", dir + "/id", "--known-hosts", dir + "/known_hosts", "-o", "StrictHostKeyChecking=accept-new"]
        let r = try Tools.run("qsftp", args + ["-b", dir + "/batch", "127.0.0.1"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = String(decoding: r.stdout, as: UTF8.self)
        #expect(out.contains(" local.txt\n") && out.contains("-rw-"), "\(out)")
        #expect(out.contains("\nnew name.txt\n"), "\(out)")
        #expect(r.stderr.contains("does-not-exist"))
        #expect(digest(dir + "/back.txt") == KeyDerivation.sha256(Array("hello qsftp\n".utf8)))
        #expect(!FileManager.default.fileExists(atPath: dir + "/r"))
        try "ls \(dir)/nothing-here\nmkdir \(dir)/never\n".write(toFile: dir + "/bad", atomically: true, encoding: .utf8)
        let bad = try Tools.run("qsftp", args + ["-b", dir + "/bad", "127.0.0.1"])
        #expect(bad.status == 1 && bad.stderr.contains("nothing-here"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/never"), "the batch went on after a failure")
    }

    @Test("OpenSSH's sftp lists, gets, puts, renames and removes on qsshd through 'qssh tunnel'")
    func openSSHSFTP() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try q.start(dir)
        defer { server.stop() }
        try FileManager.default.createDirectory(atPath: dir + "/r", withIntermediateDirectories: true)
        try write(dir + "/r/remote file", TCP.pattern(300_000, seed: 5))
        try write(dir + "/local", Array("put me".utf8))
        let batch = """
            ls -l \(dir)/r
            get "\(dir)/r/remote file" \(dir)/fetched
            put \(dir)/local \(dir)/r/uploaded
            rename \(dir)/r/uploaded \(dir)/r/renamed
            rm "\(dir)/r/remote file"
            """
        try batch.write(toFile: dir + "/batch", atomically: true, encoding: .utf8)
        let me = try #require(SessionUser.current()?.name)
        let proxy = "\(try Tools.path("qssh")) tunnel -p \(server.port) -i \(dir)/id --known-hosts \(dir)/known_hosts -o StrictHostKeyChecking=accept-new %r@%h"
        let sftp = try Tools.run("/usr/bin/sftp", ["-F", "/dev/null", "-o", "ProxyCommand=\(proxy)", "-o", "UserKnownHostsFile=\(dir)/ssh_kh",
                                                   "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes", "-b", dir + "/batch", me + "@127.0.0.1"])
        #expect(sftp.status == 0, "\(sftp.stderr)")
        #expect(String(decoding: sftp.stdout, as: UTF8.self).contains("remote file"))
        #expect(digest(dir + "/fetched") == KeyDerivation.sha256(TCP.pattern(300_000, seed: 5)))
        #expect(digest(dir + "/r/renamed") == KeyDerivation.sha256(Array("put me".utf8)))
        #expect(!FileManager.default.fileExists(atPath: dir + "/r/uploaded") && !FileManager.default.fileExists(atPath: dir + "/r/remote file"))
    }
}
}
