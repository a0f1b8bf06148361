/// Decides, tick by tick, how many queued data cells leave and how many padding cells go with
/// them (sans-I/O: the driver keeps the queue and the timer). See ``CoverTrafficPolicy``.
public struct CoverTrafficScheduler: Sendable {
    public let policy: CoverTrafficPolicy
    private var rng = SystemRandomNumberGenerator()
    /// Milliseconds since the session was established, at the last tick.
    private var elapsed: Int64 = 0
    /// random: the front burst's cells still to send, with their send times (ms since start).
    private var front: [Int64] = []
    /// constant: cell budget not yet spent, in thousandths of a cell.
    private var carry: Int64 = 0

    /// What one tick decided.
    public struct Decision: Sendable, Equatable {
        /// How many cells' worth of queued data to release (`Int.max`: all of it).
        public var releaseCells: Int
        public var paddingCells: Int
        /// Milliseconds until the next tick.
        public var nextTickMilliseconds: Int64
    }

    public init(policy: CoverTrafficPolicy) {
        self.policy = policy
        if policy.mode == .random, policy.frontMaxCells > 0 {
            let n = Int.random(in: 1...policy.frontMaxCells, using: &rng)
            // FRONT draws send times from a Rayleigh distribution; a uniform spread over a random
            // window of at most `frontSeconds` keeps the same front-loaded shape in the first seconds.
            let window = Int64.random(in: 500...max(500, policy.frontSeconds * 1000), using: &rng)
            front = (0..<n).map { _ in Int64.random(in: 0...window, using: &rng) }.sorted()
        }
    }

    /// The first tick's delay after the session is established.
    public mutating func firstTick() -> Int64 { nextTick() }

    /// Called at each tick with the number of data cells waiting.
    public mutating func tick(queuedCells: Int, sinceLastTickMilliseconds: Int64) -> Decision {
        elapsed += sinceLastTickMilliseconds
        switch policy.mode {
        case .off:
            return Decision(releaseCells: Int.max, paddingCells: 0, nextTickMilliseconds: 1000)
        case .constant:
            // The budget follows the time that really passed (a late tick sends more), so the
            // rate stays constant when the event loop is busy; at most 4 ticks' worth at once.
            let since = min(max(0, sinceLastTickMilliseconds), 4 * policy.constantTickMilliseconds)
            carry += Int64(policy.constantCellsPerSecond) * since
            let budget = Int(carry / 1000)
            carry -= Int64(budget) * 1000
            let release = min(queuedCells, budget)
            return Decision(releaseCells: release, paddingCells: budget - release, nextTickMilliseconds: policy.constantTickMilliseconds)
        case .random:
            var padding = 0
            while let t = front.first, t <= elapsed {
                front.removeFirst()
                padding += 1
            }
            let next = nextTick()
            let p = policy.burstsPerSecond * Double(next) / 1000
            if Double.random(in: 0..<1, using: &rng) < p { padding += Int.random(in: 1...max(1, policy.burstMaxCells), using: &rng) }
            return Decision(releaseCells: Int.max, paddingCells: padding, nextTickMilliseconds: next)
        }
    }

    private mutating func nextTick() -> Int64 {
        switch policy.mode {
        case .off: return 1000
        case .constant: return policy.constantTickMilliseconds
        case .random: return Int64.random(in: policy.randomTickMilliseconds, using: &rng)
        }
    }
}
