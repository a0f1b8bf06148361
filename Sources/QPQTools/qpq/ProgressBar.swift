import Foundation

/// A one-line progress bar on stdout, drawn only when stdout is a terminal (redrawn when the
/// shown percentage changes).
final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let enabled: Bool
    private let lock = NSLock()
    private var shown = -1

    init(label: String, enabled: Bool = isatty(1) == 1) {
        self.label = label
        self.enabled = enabled
    }

    func update(_ done: UInt64, _ total: UInt64) {
        guard enabled else { return }
        let percent = total == 0 ? 100 : Int(min(100, done * 100 / total))
        lock.lock()
        defer { lock.unlock() }
        guard percent != shown else { return }
        shown = percent
        let width = 30, filled = percent * width / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = "\r\(label) [\(bar)] \(percent)% \(Self.size(done))/\(Self.size(total))"
        FileHandle.standardOutput.write(Data(line.utf8))
    }

    /// Ends the bar's line (if one was drawn).
    func finish() {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        if shown >= 0 { FileHandle.standardOutput.write(Data("\n".utf8)) }
        shown = -1
    }

    static func size(_ n: UInt64) -> String {
        n < 1024 * 1024 ? "\(n / 1024) KiB" : String(format: "%.1f MiB", Double(n) / 1_048_576)
    }
}
