import QNSP
import Testing

@Suite("Cover traffic scheduler")
struct CoverTrafficSchedulerTests {
    @Test("constant: every tick carries exactly the budget, data first, padding for the rest; data beyond it waits")
    func constant() {
        var policy = CoverTrafficPolicy(mode: .constant)
        policy.constantCellsPerSecond = 500
        policy.constantTickMilliseconds = 20
        var s = CoverTrafficScheduler(policy: policy)
        #expect(s.firstTick() == 20)
        var queued = 0
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<1000 {
            queued += Int.random(in: 0...20, using: &rng)
            let d = s.tick(queuedCells: queued, sinceLastTickMilliseconds: 20)
            #expect(d.releaseCells + d.paddingCells == 10)
            #expect(d.releaseCells == min(queued, 10))
            queued -= d.releaseCells
        }
        // Late ticks (a busy event loop) carry the time that passed: the rate stays 500 cells/s.
        var cells = 0
        var elapsed: Int64 = 0
        for _ in 0..<1000 {
            let late = Int64.random(in: 20...70, using: &rng)
            elapsed += late
            let d = s.tick(queuedCells: 0, sinceLastTickMilliseconds: late)
            cells += d.paddingCells
        }
        #expect(abs(Double(cells) - Double(elapsed) / 2) <= 1, "\(cells) cells in \(elapsed) ms")
    }

    @Test("random: a front-loaded burst within the first seconds, later bursts near the configured rate, jittered ticks")
    func random() {
        var policy = CoverTrafficPolicy(mode: .random)
        policy.frontMaxCells = 200
        policy.frontSeconds = 2
        policy.burstsPerSecond = 2
        policy.burstMaxCells = 10
        var fronts: [Int] = [], laters: [Int] = []
        var ticks = Set<Int64>()
        for _ in 0..<20 {
            var s = CoverTrafficScheduler(policy: policy)
            var t = s.firstTick(), elapsed: Int64 = 0
            var front = 0, later = 0
            while elapsed < 60_000 {
                elapsed += t
                let d = s.tick(queuedCells: 3, sinceLastTickMilliseconds: t)
                #expect(d.releaseCells == Int.max)
                if elapsed <= 2_000 { front += d.paddingCells } else { later += d.paddingCells }
                ticks.insert(d.nextTickMilliseconds)
                t = d.nextTickMilliseconds
            }
            fronts.append(front)
            laters.append(later)
        }
        #expect(ticks.count > 20 && ticks.allSatisfy { policy.randomTickMilliseconds.contains($0) })
        #expect(Set(fronts).count > 5, "front bursts do not vary: \(fronts)")
        // 58 s x 2 bursts/s x mean 5.5 cells ≈ 640 cells per run (the front adds at most 200 before 2 s).
        let mean = Double(laters.reduce(0, +)) / Double(laters.count)
        #expect(mean > 400 && mean < 900, "mean later padding \(mean)")
    }

    @Test("policy names: off, random, constant; anything else is refused")
    func names() {
        #expect(CoverTrafficPolicy(name: "constant")?.mode == .constant)
        #expect(CoverTrafficPolicy(name: "Random")?.mode == .random)
        #expect(CoverTrafficPolicy(name: "off")?.mode == .off)
        #expect(CoverTrafficPolicy(name: "loud") == nil)
    }
}
