import Foundation

/// The progress line qscp draws on a terminal: file name, percent, bytes, rate and ETA,
/// redrawn at most ten times a second; silent when stderr is not a terminal or with -q.
final class TransferProgress {
    private let enabled: Bool
    private var name = ""
    private var total: UInt64 = 0
    private var start = Date()
    private var lastDraw = Date.distantPast
    private var base: UInt64 = 0

    init(enabled: Bool) { self.enabled = enabled }

    func begin(_ name: String, total: UInt64, resumedAt: UInt64 = 0) {
        self.name = name; self.total = total; base = resumedAt
        start = Date(); lastDraw = .distantPast
        update(resumedAt)
    }

    func update(_ done: UInt64, final: Bool = false) {
        guard enabled else { return }
        let now = Date()
        guard final || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let elapsed = max(now.timeIntervalSince(start), 0.001)
        let rate = Double(done &- min(base, done)) / elapsed
        let percent = total == 0 ? 100 : Int(Double(done) * 100 / Double(total))
        let eta = rate > 0 && done < total ? Int(Double(total - done) / rate) : 0
        let shown = name.count > 40 ? "…" + name.suffix(39) : name
        func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, n - s.count))
            return left ? s + fill : fill + s
        }
        let line = "\r" + pad(String(shown), 40, left: true) + " " + pad("\(percent)%", 4) + " " + pad(Self.size(done), 9) + " "
            + pad(Self.size(UInt64(rate)) + "/s", 11) + " " + String(format: "%02d:%02d", eta / 60, eta % 60) + (final ? "    \n" : " ETA")
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func size(_ n: UInt64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var v = Double(n), i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(n)B" : String(format: "%.1f", v) + units[i]
    }
}
