import Foundation

@testable import QOPAQUE

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The opaque-ke peer: scripts/opaque_ke_peer.py (opaque-ke 4.0.1 through PyPI opaque-ke-py 0.1.0) as a
/// child process, driven with one JSON object per line. Replies are awaited with a deadline (poll(2)),
/// never with sleeps.
final class OpaqueKePeer {
    struct PeerError: Error, CustomStringConvertible {
        let description: String
    }

    private let process = Process()
    private let toPeer = Pipe()
    private let fromPeer = Pipe()
    private var pending: [UInt8] = []

    static var scriptPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/opaque_ke_peer.py").path
    }

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", Self.scriptPath]
        process.standardInput = toPeer
        process.standardOutput = fromPeer
        process.standardError = FileHandle.standardError
        try process.run()
        let info = try call(["op": "info"])
        guard info["library"] != nil else {
            throw PeerError(description: "opaque-ke peer did not start: \(info)")
        }
    }

    deinit {
        if process.isRunning {
            _ = try? call(["op": "quit"])
            process.terminate()
        }
        process.waitUntilExit()
    }

    /// Sends one request and returns the reply's string fields; a reply with "ok": false throws.
    func call(_ request: [String: String], timeout: Double = 30) throws -> [String: String] {
        var line = try JSONSerialization.data(withJSONObject: request)
        line.append(0x0a)
        toPeer.fileHandleForWriting.write(line)
        let reply = try readLine(timeout: timeout)
        guard let object = try JSONSerialization.jsonObject(with: Data(reply)) as? [String: Any] else {
            throw PeerError(description: "opaque-ke peer: unreadable reply")
        }
        guard object["ok"] as? Bool == true else {
            throw PeerError(description: "opaque-ke peer: \(object["error"] as? String ?? "failed")")
        }
        return object.compactMapValues { $0 as? String }
    }

    /// `call` with bytes: hex-encodes the given fields and decodes every reply field as hex.
    func bytes(_ op: String, _ fields: [String: [UInt8]]) throws -> [String: [UInt8]] {
        var request = fields.mapValues { Hex.encode($0) }
        request["op"] = op
        return try call(request).filter { $0.key != "library" && $0.key != "version" }.mapValues(Hex.decode)
    }

    private func readLine(timeout: Double) throws -> [UInt8] {
        let deadline = Date().addingTimeInterval(timeout)
        let descriptor = fromPeer.fileHandleForReading.fileDescriptor
        while true {
            if let newline = pending.firstIndex(of: 0x0a) {
                let line = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                return line
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw PeerError(description: "opaque-ke peer: no reply within \(timeout) s") }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(remaining, 1) * 1000))
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { throw PeerError(description: "opaque-ke peer exited") }
            pending += chunk[0..<count]
        }
    }
}
