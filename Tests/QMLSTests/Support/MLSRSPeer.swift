import Foundation
import QMLS

/// The mls-rs interop peer (`scripts/mls_rs_peer.py`, a JSON-lines process over the PyPI
/// binding `agentvault-mls-rs-uniffi`), started as a real child process.
final class MLSRSPeer {
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffer: [UInt8] = []
    private var nextID = 0

    /// Where the peer script is: `$QMLS_MLSRS_PEER`, else `scripts/mls_rs_peer.py` in the repo.
    static var scriptPath: String? {
        if let path = ProcessInfo.processInfo.environment["QMLS_MLSRS_PEER"] {
            return path
        }
        let repo = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
        let path = repo.appendingPathComponent("scripts/mls_rs_peer.py").path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// Whether the peer can run here (script present and the Python binding importable).
    static var isAvailable: Bool {
        guard scriptPath != nil else {
            return false
        }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", "import mls_rs_uniffi"]
        check.standardOutput = FileHandle.nullDevice
        check.standardError = FileHandle.nullDevice
        do {
            try check.run()
            check.waitUntilExit()
            return check.terminationStatus == 0
        } catch {
            return false
        }
    }

    struct PeerError: Error, CustomStringConvertible {
        let description: String
    }

    init() throws {
        guard let script = Self.scriptPath else {
            throw PeerError(description: "mls_rs_peer.py not found")
        }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
    }

    deinit {
        try? input.fileHandleForWriting.close()
        if process.isRunning {
            process.terminate()
        }
        process.waitUntilExit()
    }

    /// Sends one request and returns its response; throws on `ok: false`.
    @discardableResult
    func call(_ op: String, _ fields: [String: Any] = [:]) throws -> [String: Any] {
        nextID += 1
        var request = fields
        request["op"] = op
        request["id"] = nextID
        var line = try JSONSerialization.data(withJSONObject: request)
        line.append(0x0a)
        try input.fileHandleForWriting.write(contentsOf: line)
        let response = try readLine()
        guard let object = try JSONSerialization.jsonObject(with: Data(response)) as? [String: Any] else {
            throw PeerError(description: "peer answered with non-object JSON")
        }
        guard object["ok"] as? Bool == true else {
            throw PeerError(description: "peer refused \(op): \(object["error"] ?? "?") \(object["message"] ?? "")")
        }
        return object
    }

    private func readLine() throws -> [UInt8] {
        while true {
            if let newline = buffer.firstIndex(of: 0x0a) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                return line
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty {
                throw PeerError(
                    description:
                        "peer closed its output (exit status \(process.isRunning ? -1 : process.terminationStatus))"
                )
            }
            buffer.append(contentsOf: chunk)
        }
    }

    func shutdown() {
        _ = try? call("shutdown")
        process.waitUntilExit()
    }
}

extension Dictionary where Key == String, Value == Any {
    func bytes(_ key: String) throws -> [UInt8] {
        guard let hex = self[key] as? String, let value = [UInt8](hex: hex) else {
            throw MLSRSPeer.PeerError(description: "response lacks hex field \(key)")
        }
        return value
    }
}
