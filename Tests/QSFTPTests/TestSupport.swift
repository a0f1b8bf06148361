import QSSHTestSupport
import Foundation
import Testing
@testable import QSFTP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif



func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var rng = SplitMix64(seed: seed)
    var out = [UInt8]()
    out.reserveCapacity(count + 8)
    while out.count < count {
        let v = rng.next()
        for i in 0..<8 where out.count < count { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
    return out
}

/// A temporary directory removed on deinit.
final class TempDir {
    let path: String
    init() throws {
        var template = Array((NSTemporaryDirectory() + "/qsftp-test-XXXXXX").utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ b in b.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw SFTPError.io(errno, "mkdtemp")
        }
        // Canonical path so that comparisons with realpath results work.
        guard let real = realpath(p, nil) else { throw SFTPError.io(errno, "realpath") }
        path = String(cString: real)
        free(real)
    }
    deinit {
        _ = chmodTree(path)
        try? FileManager.default.removeItem(atPath: path)
    }
    func sub(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: sub(name)))
    }
    func read(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: sub(name))))
    }
    func mkdir(_ name: String) throws {
        try FileManager.default.createDirectory(atPath: sub(name), withIntermediateDirectories: true)
    }
    func exists(_ name: String) -> Bool {
        var st = stat()
        return lstat(sub(name), &st) == 0
    }
    func makeSymlink(_ target: String, _ name: String) throws {
        guard symlink(target, sub(name)) == 0 else { throw SFTPError.io(errno, "symlink") }
    }
}

/// Makes every directory below `path` writable again so cleanup works after fuzzing.
@discardableResult
private func chmodTree(_ path: String) -> Bool {
    _ = chmod(path, 0o700)
    guard let items = try? FileManager.default.contentsOfDirectory(atPath: path) else { return true }
    for i in items {
        var st = stat()
        let p = path + "/" + i
        if lstat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { chmodTree(p) }
    }
    return true
}

/// Sends one message to a server core and decodes the response, checking framing.
func exchange(_ server: SFTPServer, _ message: SFTPMessage) throws -> SFTPMessage {
    let packet = message.encode()
    let response = server.handle(packet[4...])
    return try decodePacket(response)
}

/// Decodes a complete packet (with length) and checks the length is exact.
func decodePacket(_ packet: [UInt8]) throws -> SFTPMessage {
    guard packet.count >= 5 else { throw SFTPError.malformedPacket("short packet") }
    let length = packet[0..<4].reduce(0) { $0 << 8 | Int($1) }
    guard length == packet.count - 4 else { throw SFTPError.malformedPacket("length \(length) != \(packet.count - 4)") }
    return try SFTPMessage.decode(packet[4...])
}

func statusCode(_ m: SFTPMessage) -> SFTPStatus? {
    if case .status(_, let code, _, _) = m { return code }
    return nil
}

func handleBytes(_ m: SFTPMessage) -> [UInt8]? {
    if case .handle(_, let h) = m { return h }
    return nil
}

func names(_ m: SFTPMessage) -> [SFTPNameEntry]? {
    if case .name(_, let e) = m { return e }
    return nil
}

func attrs(_ m: SFTPMessage) -> SFTPAttributes? {
    if case .attrs(_, let a) = m { return a }
    return nil
}

/// Holds the server thread's exit code; written before the semaphore signal, read after the wait.
final class ServerThreadResult: @unchecked Sendable {
    var code: Int32 = -1
    let done = DispatchSemaphore(value: 0)
}

/// Two pipes with an `SFTPServerLoop` on its own thread.
struct PipeServer {
    let clientInput: CInt, clientOutput: CInt
    let serverInput: CInt, serverOutput: CInt
    let result = ServerThreadResult()

    /// `serve` runs on the server thread with (input, output) and returns an exit code.
    init(serve: @escaping @Sendable (CInt, CInt) -> Int32) throws {
        var toServer: [Int32] = [0, 0], toClient: [Int32] = [0, 0]
        guard pipe(&toServer) == 0, pipe(&toClient) == 0 else { throw SFTPError.io(errno, "pipe") }
        serverInput = toServer[0]; clientOutput = toServer[1]
        clientInput = toClient[0]; serverOutput = toClient[1]
        let (i, o, r) = (serverInput, serverOutput, result)
        let thread = Thread {
            r.code = serve(i, o)
            r.done.signal()
        }
        thread.start()
    }

    init(root: String?) throws {
        try self.init { i, o in SFTPServerLoop.run(input: i, output: o, root: root) }
    }

    /// Waits for the server thread (after the client closed its ends) and returns its exit code.
    func finish() -> Int32 {
        result.done.wait()
        close(serverInput); close(serverOutput)
        return result.code
    }
}

/// Runs `body` with a client connected to an in-process server; checks a clean server exit.
func withClient(root: String?, _ body: (SFTPClient) throws -> Void) throws {
    let ps = try PipeServer(root: root)
    let client: SFTPClient
    do {
        client = try SFTPClient(input: ps.clientInput, output: ps.clientOutput)
    } catch {
        close(ps.clientInput); close(ps.clientOutput)   // a failed init leaves the fds to us
        _ = ps.finish()
        throw error
    }
    do {
        try body(client)
    } catch {
        client.close()
        _ = ps.finish()
        throw error
    }
    client.close()
    #expect(ps.finish() == 0)
}
