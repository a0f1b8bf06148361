import NIOConcurrencyHelpers
import Foundation
import QNSPCrypto
import Testing

/// Runs the built executables as a user would.
enum Tools {
    static let binDir: URL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()

    static func path(_ name: String) throws -> String {
        if name.hasPrefix("/") { return name }
        var dir = binDir
        for _ in 0..<3 {
            let p = dir.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
            dir = dir.deletingLastPathComponent()
        }
        throw ToolTestError("executable \(name) not found near \(binDir.path); build with 'swift build --build-tests' first")
    }

    struct Result { var status: Int32; var stdout: Data; var stderr: String }

    /// Runs a tool to completion with optional stdin.
    static func run(_ name: String, _ args: [String], stdin: Data? = nil, cwd: String? = nil, environment: [String: String]? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try path(name))
        p.arguments = args
        if let environment { p.environment = environment }
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out; p.standardError = err; p.standardInput = inp
        try p.run()
        let writer = Thread {
            if let stdin { inp.fileHandleForWriting.write(stdin) }
            try? inp.fileHandleForWriting.close()
        }
        writer.start()
        let errData = LockedData()
        let errReader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        errReader.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !errData.done { usleep(1000) }
        return Result(status: p.terminationStatus, stdout: o, stderr: String(decoding: errData.value, as: UTF8.self))
    }
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var finished = false
    func set(_ d: Data) { lock.lock(); data = d; finished = true; lock.unlock() }
    var done: Bool { lock.lock(); defer { lock.unlock() }; return finished }
    var value: Data { lock.lock(); defer { lock.unlock() }; return data }
}

struct ToolTestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func makeTempDir() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qssh-tools-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func mode(_ path: String) throws -> Int {
    try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

/// Tool tests spawn processes; they run one at a time so that no child inherits another test's pipe.
@Suite("Command-line tools", .serialized)
struct ToolSuites {}

extension ToolSuites {
@Suite("qssh-keygen")
struct KeygenToolTests {
    @Test("generates user and host keys with 0600/0644 files and OpenSSH-style output")
    func generate() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Tools.run("qssh-keygen", ["-t", "user", "-f", dir + "/id", "-N", "", "-C", "alice@test"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = String(decoding: r.stdout, as: UTF8.self)
        #expect(out.contains("Your identification has been saved in \(dir)/id"))
        #expect(out.contains("The key fingerprint is:\nSHA256:"))
        #expect(try mode(dir + "/id") == 0o600 && mode(dir + "/id.pub") == 0o644)
        let pub = try String(contentsOfFile: dir + "/id.pub", encoding: .utf8)
        #expect(pub.hasPrefix("qnsp-mldsa65 ") && pub.hasSuffix(" alice@test\n"))
        // -y derives the same public line; -l prints the fingerprint of private and public files alike.
        let y = try Tools.run("qssh-keygen", ["-y", "-f", dir + "/id"])
        #expect(y.status == 0 && String(decoding: y.stdout, as: UTF8.self) == pub)
        let l1 = try Tools.run("qssh-keygen", ["-l", "-f", dir + "/id"]), l2 = try Tools.run("qssh-keygen", ["-l", "-f", dir + "/id.pub"])
        let fp = String(decoding: l1.stdout, as: UTF8.self)
        #expect(fp == String(decoding: l2.stdout, as: UTF8.self))
        #expect(fp.hasPrefix("192 SHA256:") && fp.hasSuffix(" alice@test (ML-DSA-65)\n"))
        #expect(out.contains(String(fp.split(separator: " ")[1])))

        let h = try Tools.run("qssh-keygen", ["-q", "-t", "host", "-f", dir + "/host", "-N", "hunter2", "-a", "14"])
        #expect(h.status == 0 && h.stdout.isEmpty)
        let hy = try Tools.run("qssh-keygen", ["-y", "-f", dir + "/host", "-P", "hunter2"])
        #expect(String(decoding: hy.stdout, as: UTF8.self).hasPrefix("qnsp-xwing-mldsa65 "))
        let bad = try Tools.run("qssh-keygen", ["-y", "-f", dir + "/host", "-P", "wrong"])
        #expect(bad.status == 1 && bad.stderr.contains("incorrect passphrase"))
    }

    @Test("refuses to overwrite, refuses open permissions, explains bad arguments")
    func refusals() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try Tools.run("qssh-keygen", ["-q", "-f", dir + "/id", "-N", ""]).status == 0)
        let again = try Tools.run("qssh-keygen", ["-q", "-f", dir + "/id", "-N", ""])
        #expect(again.status == 1 && again.stderr.contains("already exists"))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: dir + "/id")
        let open = try Tools.run("qssh-keygen", ["-y", "-f", dir + "/id"])
        #expect(open.status == 1 && open.stderr.contains("UNPROTECTED PRIVATE KEY FILE"))
        let type = try Tools.run("qssh-keygen", ["-t", "rsa", "-f", dir + "/x", "-N", ""])
        #expect(type.status == 1 && type.stderr.contains("unknown key type 'rsa'"))
        let entropy = try Tools.run("qssh-keygen", ["-f", dir + "/y", "-N", "", "--entropy-file", dir + "/nope"])
        #expect(entropy.status == 1 && entropy.stderr.contains("entropy"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/y"))
        let help = try Tools.run("qssh-keygen", ["--help"])
        #expect(String(decoding: help.stdout, as: UTF8.self).contains("Examples:"))
    }
}

/// A `qnsp serve` process on an ephemeral loopback port.
final class ServeProcess {
    let process = Process()
    let port: Int
    private let err = Pipe()

    convenience init(dir: String, extra: [String] = ["--echo"]) throws {
        try self.init(tool: "qnsp", arguments: ["serve", "-p", "0", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys"] + extra)
    }

    /// Starts `tool` (which must print "listening on 127.0.0.1:PORT" on stderr) and waits for the port.
    init(tool: String, arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: try Tools.path(tool))
        process.arguments = arguments
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Read stderr until the "listening on" line names the port (startup warnings may come first).
        var text = ""
        let handle = err.fileHandleForReading
        while text.range(of: #"listening on [^\n]*\n"#, options: .regularExpression) == nil {
            let d = handle.availableData
            if d.isEmpty { break }
            text += String(decoding: d, as: UTF8.self)
        }
        guard let r = text.range(of: #"listening on 127\.0\.0\.1:(\d+)"#, options: .regularExpression),
              let p = Int(text[r].split(separator: ":").last ?? "") else {
            process.terminate()
            throw ToolTestError("\(tool) did not start: \(text)")
        }
        port = p
        // Keep reading the server's log so that it never blocks on a full pipe; tests read it.
        captured.withLockedValue { $0 = text }
        let sink = captured
        let reader = Thread {
            while true {
                let d = handle.availableData
                if d.isEmpty { return }
                sink.withLockedValue { $0 += String(decoding: d, as: UTF8.self) }
            }
        }
        reader.start()
    }

    private let captured = NIOLockedValueBox("")

    /// Everything the server wrote on stderr so far.
    var log: String { captured.withLockedValue { $0 } }

    /// Waits (up to 10 s) until the server's log contains `text`.
    func waitForLog(_ text: String) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if log.contains(text) { return true }
            usleep(20_000)
        }
        return log.contains(text)
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}

@Suite("qnsp tunnel tool")
struct QNSPToolTests {
    func setup() throws -> String {
        let dir = try makeTempDir()
        for (t, f) in [("host", "host"), ("user", "id"), ("user", "stranger")] {
            let r = try Tools.run("qssh-keygen", ["-q", "-t", t, "-f", dir + "/" + f, "-N", ""])
            guard r.status == 0 else { throw ToolTestError(r.stderr) }
        }
        try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: dir + "/authorized_keys")
        return dir
    }

    func connect(_ dir: String, port: Int, identity: String = "id", extra: [String] = [], stdin: Data) throws -> Tools.Result {
        try Tools.run("qnsp", ["connect", "-p", "\(port)", "-i", dir + "/" + identity, "--known-hosts", dir + "/known_hosts"] + extra + ["127.0.0.1"], stdin: stdin)
    }

    @Test("trust on first use, then pinned; bytes come back intact")
    func firstUseThenPinned() throws {
        let dir = try setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try ServeProcess(dir: dir)
        defer { server.stop() }
        // Batch mode refuses an unknown host and records nothing.
        let batch = try connect(dir, port: server.port, extra: ["--batch"], stdin: Data("x".utf8))
        #expect(batch.status == 255 && batch.stderr.contains("Host key verification failed"), "\(batch.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/known_hosts"))
        let first = try connect(dir, port: server.port, extra: ["--accept-new"], stdin: Data("hello\n".utf8))
        #expect(first.status == 0, "\(first.stderr)")
        #expect(String(decoding: first.stdout, as: UTF8.self) == "hello\n")
        #expect(first.stderr.contains("permanently added '[127.0.0.1]:\(server.port)'"))
        let known = try String(contentsOfFile: dir + "/known_hosts", encoding: .utf8)
        #expect(known.hasPrefix("[127.0.0.1]:\(server.port) qnsp-xwing-mldsa65 "))
        var blob = Data(count: 16 << 20)  // large enough that the echo is still queued when the server closes
        for i in 0..<blob.count { blob[i] = UInt8(truncatingIfNeeded: i &* 7919 >> 3) }
        let second = try connect(dir, port: server.port, extra: ["--batch"], stdin: blob)
        #expect(second.status == 0, "\(second.stderr)")
        // Length and digest, not the data itself: a mismatch must report at once, not diff 16 MiB.
        #expect(second.stdout.count == blob.count, "echoed \(second.stdout.count) of \(blob.count) bytes; stderr: \(second.stderr)")
        #expect(KeyDerivation.sha256([UInt8](second.stdout)) == KeyDerivation.sha256([UInt8](blob)))
    }

    @Test("a changed host key is refused loudly, naming the known_hosts line")
    func changedHostKey() throws {
        let dir = try setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try ServeProcess(dir: dir)
        defer { server.stop() }
        #expect(try Tools.run("qssh-keygen", ["-q", "-t", "host", "-f", dir + "/other", "-N", ""]).status == 0)
        let otherPub = try String(contentsOfFile: dir + "/other.pub", encoding: .utf8)
        try ("# pinned earlier\n[127.0.0.1]:\(server.port) " + otherPub).write(toFile: dir + "/known_hosts", atomically: true, encoding: .utf8)
        let r = try connect(dir, port: server.port, stdin: Data("secret".utf8))
        #expect(r.status == 255)
        #expect(r.stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"))
        #expect(r.stderr.contains("\(dir)/known_hosts:2"))
        #expect(r.stdout.isEmpty)
    }

    @Test("--discard counts the bytes and answers with the count; serve refuses two modes")
    func discard() throws {
        let dir = try setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try ServeProcess(dir: dir, extra: ["--discard"])
        defer { server.stop() }
        let r = try connect(dir, port: server.port, extra: ["--accept-new"], stdin: Data(count: 1_000_003))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(String(decoding: r.stdout, as: UTF8.self) == "1000003\n")
        let both = try Tools.run("qnsp", ["serve", "-p", "0", "-h", dir + "/host", "--authorized-keys", dir + "/authorized_keys", "--echo", "--discard"])
        #expect(both.status == 255 && both.stderr.contains("choose exactly one of --echo, --discard and --forward"), "\(both.stderr)")
    }

    @Test("an unauthorized user key is refused with a clear message")
    func unauthorizedUser() throws {
        let dir = try setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try ServeProcess(dir: dir)
        defer { server.stop() }
        let r = try connect(dir, port: server.port, identity: "stranger", extra: ["--accept-new"], stdin: Data("x".utf8))
        #expect(r.status == 255)
        #expect(r.stderr.contains("permission denied"), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test("--forward joins sessions to a TCP service; a closed port gives a clear error")
    func forwardAndClosedPort() throws {
        let dir = try setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let closed = try Tools.run("qnsp", ["connect", "-p", "1", "-i", dir + "/id", "--known-hosts", dir + "/kh", "--batch", "127.0.0.1"], stdin: Data())
        #expect(closed.status == 255 && closed.stderr.contains("connect to 127.0.0.1 port 1: Connection refused"), "\(closed.stderr)")
        // A plain TCP service (a Python upper-casing echo server) behind the tunnel.
        let service = Process()
        service.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        service.arguments = ["python3", "-u", "-c", """
            import socket, threading
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8); print(s.getsockname()[1], flush=True)
            def serve(c):
                while True:
                    d = c.recv(65536)
                    if not d: break
                    c.sendall(d.upper())
                c.close()
            while True:
                c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
            """]
        let out = Pipe()
        service.standardOutput = out
        try service.run()
        // SIGKILL: the test runner's threads block SIGTERM and Process passes that mask on to children.
        defer { kill(service.processIdentifier, SIGKILL); service.waitUntilExit() }
        var line = ""
        while !line.contains("\n") {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            line += String(decoding: d, as: UTF8.self)
        }
        let servicePort = try #require(Int(line.trimmingCharacters(in: .whitespacesAndNewlines)))
        let forwarder = try ServeProcess(dir: dir, extra: ["--forward", "127.0.0.1:\(servicePort)"])
        defer { forwarder.stop() }
        let r = try connect(dir, port: forwarder.port, extra: ["--accept-new"], stdin: Data("through the tunnel\n".utf8))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(String(decoding: r.stdout, as: UTF8.self) == "THROUGH THE TUNNEL\n")
    }
}
}
