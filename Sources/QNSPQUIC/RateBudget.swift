/// A token bucket: at most `perSecond` events per second, bursts up to the same number.
struct RateBudget {
    let perSecond: Double
    private var tokens: Double
    private var last: UInt64 = 0

    init(perSecond: Double) {
        self.perSecond = perSecond
        tokens = perSecond
    }

    mutating func take(now: UInt64) -> Bool {
        if last != 0 && now > last { tokens = min(perSecond, tokens + Double(now - last) / 1e9 * perSecond) }
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
