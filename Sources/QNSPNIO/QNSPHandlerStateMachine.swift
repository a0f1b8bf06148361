import NIOCore
import QNSP

extension QNSPHandler {
    /// The time-driven decisions of a QNSP connection — handshake deadline, keepalive, idle
    /// timeout, time-based rekey, the drain of an orderly close — as a pure state machine on a
    /// clock, apart from the NIO handler that carries them out (STYLE.md §2).
    ///
    /// The handler tells it what happens (``transportActive()``, ``established()``,
    /// ``received(data:)``, ``sent(data:)``, ``closeRequested()``, ``drained()``) and calls
    /// ``tick()`` when the deadline it last returned (``nextDeadline``) has come; every call
    /// returns the actions to execute. One timer suffices: the machine keeps one deadline per
    /// concern and reports the earliest.
    public struct StateMachine<C: Clock> where C.Duration == Duration {
        /// Settings (nil or zero turns a concern off).
        public struct Configuration: Sendable {
            public var handshakeTimeout: Duration?
            /// After this long with nothing received, a ping; after `keepaliveMaxMissed` such intervals, failure.
            public var keepaliveInterval: Duration?
            public var keepaliveMaxMissed: Int = 3
            /// Close (orderly) after this long without application data either way.
            public var idleTimeout: Duration?
            /// Update the sending key this often.
            public var rekeyInterval: Duration?
            /// How long an orderly close waits for queued cells before closing anyway.
            public var drainTimeout: Duration = .seconds(10)
            public init() {}
        }

        /// What the handler does.
        public enum Action: Equatable, Sendable {
            /// Send a keepalive ping.
            case sendPing
            /// Update the sending key (time-based).
            case updateKey
            /// Fail the connection (handshake timeout, dead peer).
            case fail(QNSPError)
            /// Start an orderly close with this code and reason (idle timeout).
            case closeOrderly(QNSPCloseCode, reason: String)
            /// Close the transport now (the drain finished or timed out).
            case closeTransport
        }

        private enum Phase: Equatable {
            case idle
            case handshaking(deadline: C.Instant?)
            case established
            case draining(deadline: C.Instant)
            case closed
        }

        public let configuration: Configuration
        public let clock: C
        private var phase: Phase = .idle
        private var lastReceived: C.Instant
        private var lastData: C.Instant
        private var lastRekey: C.Instant
        private var pingsSent = 0

        public init(configuration: Configuration, clock: C) {
            self.configuration = configuration
            self.clock = clock
            let now = clock.now
            lastReceived = now
            lastData = now
            lastRekey = now
        }

        // MARK: Events

        /// The transport is up; the handshake deadline starts.
        public mutating func transportActive() {
            guard case .idle = phase else { return }
            phase = .handshaking(deadline: configuration.handshakeTimeout.map { clock.now.advanced(by: $0) })
        }

        /// The handshake finished: keepalive, idle and rekey clocks start now.
        public mutating func established() {
            switch phase {
            case .idle, .handshaking:
                let now = clock.now
                lastReceived = now
                lastData = now
                lastRekey = now
                pingsSent = 0
                phase = .established
            case .established, .draining, .closed:
                break
            }
        }

        /// Bytes (any cell: data, ping, pong) arrived; `data` when they carried application data.
        public mutating func received(data: Bool) {
            let now = clock.now
            lastReceived = now
            pingsSent = 0
            if data { lastData = now }
        }

        /// Application data was sent (keepalives do not count for the idle timeout).
        public mutating func sent(data: Bool) {
            if data { lastData = clock.now }
        }

        /// The key was updated (by time or by the byte limit): the interval restarts.
        public mutating func keyUpdated() { lastRekey = clock.now }

        /// An orderly close began: the drain deadline starts.
        public mutating func closeRequested() {
            switch phase {
            case .draining, .closed: return
            case .idle, .handshaking, .established:
                phase = .draining(deadline: clock.now.advanced(by: configuration.drainTimeout))
            }
        }

        /// The queued cells reached the transport.
        public mutating func drained() -> [Action] {
            guard case .draining = phase else { return [] }
            phase = .closed
            return [.closeTransport]
        }

        /// The transport closed (for any reason): nothing more will be asked.
        public mutating func closed() { phase = .closed }

        // MARK: Time

        /// When ``tick()`` must be called next (nil: no deadline).
        public var nextDeadline: C.Instant? {
            switch phase {
            case .idle, .closed:
                return nil
            case .handshaking(let deadline):
                return deadline
            case .draining(let deadline):
                return deadline
            case .established:
                var deadlines: [C.Instant] = []
                if let interval = configuration.keepaliveInterval, interval > .zero {
                    deadlines.append(lastReceived.advanced(by: interval * (pingsSent + 1)))
                }
                if let limit = configuration.idleTimeout, limit > .zero {
                    deadlines.append(lastData.advanced(by: limit))
                }
                if let interval = configuration.rekeyInterval, interval > .zero {
                    deadlines.append(lastRekey.advanced(by: interval))
                }
                return deadlines.min()
            }
        }

        /// Called when the deadline came (or later; early calls do nothing).
        public mutating func tick() -> [Action] {
            let now = clock.now
            switch phase {
            case .idle, .closed:
                return []
            case .handshaking(let deadline):
                guard let deadline, now >= deadline, let limit = configuration.handshakeTimeout else { return [] }
                phase = .closed
                return [.fail(.handshakeTimeout(seconds: limit.components.seconds))]
            case .draining(let deadline):
                guard now >= deadline else { return [] }
                phase = .closed
                return [.closeTransport]
            case .established:
                var actions: [Action] = []
                if let interval = configuration.keepaliveInterval, interval > .zero,
                    now >= lastReceived.advanced(by: interval * (pingsSent + 1))
                {
                    let missed = max(1, configuration.keepaliveMaxMissed)
                    if pingsSent + 1 >= missed {
                        phase = .closed
                        return [.fail(.peerUnresponsive(seconds: (interval * missed).components.seconds))]
                    }
                    pingsSent += 1
                    actions.append(.sendPing)
                }
                if let limit = configuration.idleTimeout, limit > .zero, now >= lastData.advanced(by: limit) {
                    closeRequested()
                    actions.append(
                        .closeOrderly(.idleTimeout, reason: "idle timeout (\(limit.components.seconds) s without data)")
                    )
                    return actions
                }
                if let interval = configuration.rekeyInterval, interval > .zero, now >= lastRekey.advanced(by: interval)
                {
                    lastRekey = now
                    actions.append(.updateKey)
                }
                return actions
            }
        }
    }
}

/// A `Clock` that reads an event loop's time (`EventLoop.now`), so that an `EmbeddedEventLoop`'s
/// virtual time drives ``QNSPHandler/StateMachine`` in tests exactly as real time does on a real
/// loop. Before a loop is attached it reads the system's uptime clock.
public struct EventLoopClock: Clock {
    public struct Instant: InstantProtocol {
        public var deadline: NIODeadline
        public func advanced(by duration: Duration) -> Instant {
            Instant(deadline: deadline + .nanoseconds(Self.nanoseconds(duration)))
        }
        public func duration(to other: Instant) -> Duration { .nanoseconds((other.deadline - deadline).nanoseconds) }
        public static func < (a: Instant, b: Instant) -> Bool { a.deadline < b.deadline }
        static func nanoseconds(_ d: Duration) -> Int64 {
            let (s, a) = d.components
            return s * 1_000_000_000 + a / 1_000_000_000
        }
    }

    /// Where the loop is attached (set once, on that loop, when the handler is added).
    final class Source: @unchecked Sendable {
        var loop: (any EventLoop)?
    }
    let source = Source()

    public init() {}

    /// Reads `loop`'s time from now on.
    public func attach(_ loop: any EventLoop) { source.loop = loop }

    public var now: Instant { Instant(deadline: source.loop?.now ?? .now()) }
    public var minimumResolution: Duration { .nanoseconds(1) }
    public func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        try await Task.sleep(for: now.duration(to: deadline))
    }
}
