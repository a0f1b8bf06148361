import Foundation
import NIOConcurrencyHelpers

/// Runs a built executable to completion: pipes read on dedicated threads, the exit observed by
/// the termination handler, every wait bounded (SIGKILL and a failure after the timeout).
enum ToolRun {
    struct Result: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    static func path(_ name: String) throws -> String {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let p = dir.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
            dir = dir.deletingLastPathComponent()
        }
        throw Failure(description: "\(name) not found near \(CommandLine.arguments[0]); run 'swift build --build-tests' first")
    }

    /// Reads `fd` to EOF on a new thread, then calls `done` with everything read.
    static func drain(_ handle: FileHandle, onChunk: @escaping @Sendable (String) -> Void = { _ in },
                      done: @escaping @Sendable (String) -> Void) {
        let thread = Thread {
            var all = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 8192)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                all += buffer[0..<n]
                onChunk(String(decoding: buffer[0..<n], as: UTF8.self))
            }
            done(String(decoding: all, as: UTF8.self))
        }
        thread.start()
    }

    static func run(_ name: String, _ arguments: [String], environment: [String: String] = [:], seconds: Double = 60) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try path(name))
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let state = NIOLockedValueBox<(status: Int32?, out: String?, err: String?, waiter: CheckedContinuation<Result?, Never>?, finished: Bool)>(
            (nil, nil, nil, nil, false))
        @Sendable func check() {
            let ready = state.withLockedValue { s -> (CheckedContinuation<Result?, Never>, Result)? in
                guard !s.finished, let status = s.status, let o = s.out, let e = s.err, let w = s.waiter else { return nil }
                s.finished = true
                return (w, Result(status: status, stdout: o, stderr: e))
            }
            if let (w, r) = ready { w.resume(returning: r) }
        }
        process.terminationHandler = { p in
            state.withLockedValue { $0.status = p.terminationStatus }
            check()
        }
        try process.run()
        drain(out.fileHandleForReading) { text in state.withLockedValue { $0.out = text }; check() }
        drain(err.fileHandleForReading) { text in state.withLockedValue { $0.err = text }; check() }
        let result: Result? = await withCheckedContinuation { c in
            state.withLockedValue { $0.waiter = c }
            check()
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
                let late = state.withLockedValue { s -> CheckedContinuation<Result?, Never>? in
                    guard !s.finished, let w = s.waiter else { return nil }
                    s.finished = true
                    return w
                }
                if let late {
                    kill(process.processIdentifier, SIGKILL)
                    late.resume(returning: nil)
                }
            }
        }
        guard let result else { throw Failure(description: "\(name) \(arguments.joined(separator: " ")) did not finish in \(Int(seconds)) s") }
        return result
    }
}
