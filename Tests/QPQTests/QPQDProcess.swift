import Foundation
import NIOConcurrencyHelpers

/// A real `qpqd` child process. Its stderr is read on a dedicated thread (never on the Swift
/// concurrency pool), and every wait has a timeout.
final class QPQDProcess: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible { let description: String }

    private let process = Process()
    private let stderr = Pipe()
    private let state = NIOLockedValueBox(State())

    private struct State {
        var text = ""
        var port: Int?
        var exited: Int32?
        /// stderr reached end of file (all of it is in `text`).
        var eof = false
        var portWaiters: [CheckedContinuation<Int?, Never>] = []
        var exitWaiters: [CheckedContinuation<Int32?, Never>] = []
    }

    static func binary() throws -> String {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let p = dir.appendingPathComponent("qpqd").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
            dir = dir.deletingLastPathComponent()
        }
        throw Failure(description: "qpqd not found near \(CommandLine.arguments[0]); run 'swift build --build-tests' first")
    }

    /// `environment`: added to the inherited one.
    init(arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: try Self.binary())
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        process.terminationHandler = { [state] p in
            let status = p.terminationStatus
            state.withLockedValue { $0.exited = status }
            Self.resumeExitWaiters(state)
        }
        try process.run()
        let handle = stderr.fileHandleForReading
        let reader = Thread { [state] in
            let fd = handle.fileDescriptor
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                let chunk = String(decoding: buffer[0..<n], as: UTF8.self)
                let ready = state.withLockedValue { s -> (Int, [CheckedContinuation<Int?, Never>])? in
                    s.text += chunk
                    guard s.port == nil, let port = Self.parsePort(s.text) else { return nil }
                    s.port = port
                    defer { s.portWaiters = [] }
                    return (port, s.portWaiters)
                }
                if let (port, waiters) = ready { for w in waiters { w.resume(returning: port) } }
            }
            // EOF: nobody will print a port any more.
            let waiters = state.withLockedValue { s -> [CheckedContinuation<Int?, Never>] in
                s.eof = true
                defer { s.portWaiters = [] }
                return s.portWaiters
            }
            for w in waiters { w.resume(returning: nil) }
            Self.resumeExitWaiters(state)
        }
        reader.start()
    }

    /// The exit is reported once the process has exited and its stderr has been read to the end.
    private static func resumeExitWaiters(_ state: NIOLockedValueBox<State>) {
        let ready = state.withLockedValue { s -> (Int32, [CheckedContinuation<Int32?, Never>])? in
            guard let status = s.exited, s.eof else { return nil }
            defer { s.exitWaiters = [] }
            return (status, s.exitWaiters)
        }
        if let (status, waiters) = ready { for w in waiters { w.resume(returning: status) } }
    }

    static func parsePort(_ text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix("qpqd: listening on 127.0.0.1:") {
            return Int(line.dropFirst("qpqd: listening on 127.0.0.1:".count))
        }
        return nil
    }

    var stderrText: String { state.withLockedValue { $0.text } }
    var pid: Int32 { process.processIdentifier }

    /// The port from the "listening on" line, or a failure after `seconds`.
    func waitForPort(seconds: Double = 30) async throws -> Int {
        let port: Int? = await withCheckedContinuation { (c: CheckedContinuation<Int?, Never>) in
            let resumeNow: Int?? = state.withLockedValue { s in
                if let p = s.port { return .some(p) }
                if s.exited != nil { return .some(nil) }
                s.portWaiters.append(c)
                return nil
            }
            if let now = resumeNow { c.resume(returning: now); return }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [state] in
                let late = state.withLockedValue { s -> [CheckedContinuation<Int?, Never>] in
                    defer { s.portWaiters = [] }
                    return s.portWaiters
                }
                for w in late { w.resume(returning: nil) }
            }
        }
        guard let port else { throw Failure(description: "qpqd did not report a port; stderr: \(stderrText)") }
        return port
    }

    /// SIGKILL if it has not exited yet (for a `defer`, so a failed test leaves no daemon behind).
    func killIfRunning() {
        if state.withLockedValue({ $0.exited == nil }) { kill(process.processIdentifier, SIGKILL) }
    }

    /// Sends SIGTERM and waits for the exit status (SIGKILL and a failure after `seconds`).
    func terminate(seconds: Double = 20) async throws -> Int32 {
        if state.withLockedValue({ $0.exited == nil }) { kill(process.processIdentifier, SIGTERM) }
        return try await waitForExit(seconds: seconds)
    }

    /// Waits for the exit status (SIGKILL and a failure after `seconds`).
    func waitForExit(seconds: Double = 20) async throws -> Int32 {
        let status: Int32? = await withCheckedContinuation { (c: CheckedContinuation<Int32?, Never>) in
            let now: Int32? = state.withLockedValue { s in
                if let e = s.exited, s.eof { return e }
                s.exitWaiters.append(c)
                return nil
            }
            if let now { c.resume(returning: now); return }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [state] in
                let late = state.withLockedValue { s -> [CheckedContinuation<Int32?, Never>] in
                    defer { s.exitWaiters = [] }
                    return s.exitWaiters
                }
                for w in late { w.resume(returning: nil) }
            }
        }
        guard let status else {
            kill(process.processIdentifier, SIGKILL)
            throw Failure(description: "qpqd did not exit in time; stderr: \(stderrText)")
        }
        return status
    }
}
