/// How a connection hides its traffic shape with padding cells (docs/protocol.md §9.6):
/// `off`, `random` (FRONT / WTF-PAD style dummy bursts and jittered release of data) or
/// `constant` (a fixed cell rate: data waits for its slot, padding fills the rest).
public struct CoverTrafficPolicy: Sendable, Equatable {
    /// The scheduling mode, as `--padding=` names it.
    public enum Mode: String, Sendable, CaseIterable {
        case off, random, constant
    }

    public var mode: Mode
    /// constant: cells per second each direction (the bandwidth budget: 200 x 768 B ≈ 154 KB/s).
    public var constantCellsPerSecond = 200
    /// constant: the tick (cells leave in groups of `rate x tick`).
    public var constantTickMilliseconds: Int64 = 20
    /// random: ticks are drawn uniformly from this range (the jitter of data release, keystrokes included).
    public var randomTickMilliseconds: ClosedRange<Int64> = 5...50
    /// random: a front-loaded burst of up to this many cells, spread over `frontSeconds` after the handshake.
    public var frontMaxCells = 300
    public var frontSeconds: Int64 = 4
    /// random: mean dummy bursts per second afterwards, each of 1...`burstMaxCells` cells.
    public var burstsPerSecond = 0.5
    public var burstMaxCells = 24

    public init(mode: Mode) { self.mode = mode }

    /// Parses `off`, `random` or `constant`.
    public init?(name: String) {
        guard let mode = Mode(rawValue: name.lowercased()) else { return nil }
        self.init(mode: mode)
    }
}
