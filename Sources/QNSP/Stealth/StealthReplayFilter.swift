/// The server's memory of accepted stealth hellos (docs/protocol.md §9.4), shared by all
/// connections of one server: a hello is accepted once, only within ±`window` seconds of the
/// server's clock and not from before the filter was made (the server's start).
public final class StealthReplayFilter: Sendable {
    /// Allowed difference between a client's clock and the server's (seconds).
    public static let defaultWindow: Int64 = 120
    /// Entries per generation beyond which every hello is refused (fail closed).
    public static let defaultCapacity = 1_000_000

    public let window: Int64
    public let capacity: Int
    public let startTime: Int64

    private struct Generations {
        var current: Set<Fingerprint> = []
        var previous: Set<Fingerprint> = []
        var rotatedAt: Int64
    }
    private struct Fingerprint: Hashable {
        let a: UInt64
        let b: UInt64
    }
    private let state: LockedState<Generations>

    /// The reasons a hello is refused (all of them are treated as a probe).
    public enum Verdict: Sendable, Equatable {
        case accepted
        case outsideWindow
        case beforeStart
        case replayed
        case full
    }

    /// - Parameter startTime: the server's start (Unix seconds); hellos from before it are refused.
    public init(startTime: Int64, window: Int64 = StealthReplayFilter.defaultWindow, capacity: Int = StealthReplayFilter.defaultCapacity) {
        self.window = window
        self.capacity = capacity
        self.startTime = startTime
        self.state = LockedState(Generations(rotatedAt: startTime))
    }

    /// Checks a verified hello's nonce and time; remembers the nonce when it is accepted.
    public func check(nonce: [UInt8], time: Int64, now: Int64) -> Verdict {
        guard time >= now - window, time <= now + window else { return .outsideWindow }
        guard time >= startTime else { return .beforeStart }
        let fp = Self.fingerprint(nonce)
        let period = 2 * window
        return state.withLock { s in
            if now - s.rotatedAt >= period {
                // Every entry is kept at least one full period after it was added.
                s.previous = s.current
                s.current = []
                s.rotatedAt = now
            }
            if s.current.contains(fp) || s.previous.contains(fp) { return .replayed }
            guard s.current.count < capacity else { return .full }
            s.current.insert(fp)
            return .accepted
        }
    }

    private static func fingerprint(_ nonce: [UInt8]) -> Fingerprint {
        var a: UInt64 = 0, b: UInt64 = 0
        for i in 0..<min(8, nonce.count) { a = a << 8 | UInt64(nonce[i]) }
        for i in 8..<min(16, nonce.count) { b = b << 8 | UInt64(nonce[i]) }
        return Fingerprint(a: a, b: b)
    }
}
