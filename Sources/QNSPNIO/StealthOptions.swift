import QNSP

/// Stealth-mode settings for ``QNSPBootstrap/Options/stealth`` (docs/protocol.md §9).
public struct StealthOptions: Sendable {
    /// The server's stealth line (a server derives it from its host key: `StealthLine(hostKey:)`).
    public var line: StealthLine
    /// Server: the replay filter shared by all its connections (ignored by clients).
    public var replayFilter: StealthReplayFilter
    /// Server: the byte limit and deadline ranges for connections that send no valid hello.
    public var probePolicy: StealthSession.ProbePolicy
    /// Start the client's first flight with a printable prefix (§9.8); server and client must agree.
    public var mimic = false

    public init(
        line: StealthLine,
        replayFilter: StealthReplayFilter = StealthReplayFilter(startTime: Int64(QNSPHandshakeGuard.wallClock())),
        probePolicy: StealthSession.ProbePolicy = .init()
    ) {
        self.line = line
        self.replayFilter = replayFilter
        self.probePolicy = probePolicy
    }
}
