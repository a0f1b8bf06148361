/// sshd's `MaxStartups start:rate:full`: beyond `start` unauthenticated connections, new ones
/// are refused with a probability that grows from `rate`% to 100% at `full`.
package struct StartupLimits: Sendable, Equatable, CustomStringConvertible {
    package var start: Int
    package var rate: Int
    package var full: Int

    package init(start: Int, rate: Int = 100, full: Int? = nil) {
        self.start = max(1, start)
        self.rate = min(100, max(0, rate))
        self.full = max(self.start, full ?? start)
    }

    /// Parses `N` or `start:rate:full` (e.g. "10:30:100").
    package init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.allSatisfy({ $0 != nil }) else { return nil }
        let values = parts.compactMap { $0 }
        switch values.count {
        case 1 where values[0] > 0:
            self.init(start: values[0])
        case 3 where values[0] > 0 && (0...100).contains(values[1]) && values[2] >= values[0]:
            self.init(start: values[0], rate: values[1], full: values[2])
        default:
            return nil
        }
    }

    package var description: String { start == full ? "\(start)" : "\(start):\(rate):\(full)" }

    /// Whether a new connection is refused when `current` are unauthenticated; `roll` is a
    /// uniform value in 0..<100.
    package func refuses(current: Int, roll: Int) -> Bool {
        if current < start { return false }
        if current >= full { return true }
        let p = rate + (100 - rate) * (current - start) / max(1, full - start)
        return roll < p
    }
}
