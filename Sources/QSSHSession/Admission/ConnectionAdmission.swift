import NIOConcurrencyHelpers
import NIOCore

/// Decides which TCP connections a server takes, keeping unauthenticated ones apart from
/// logged-in sessions (sshd's MaxStartups, PerSourceMaxStartups):
///
/// - connections still in the handshake are limited by ``StartupLimits`` (random early drop)
///   and per source address, so idle sockets cannot lock everybody out;
/// - logged-in sessions are limited separately (`maxSessions`) and never count against the
///   startups, so there is always room to log in while sessions run;
/// - when a new connection would be refused, the oldest one that has not sent a single byte for
///   a second is closed instead to make room (a socket that sends nothing is the cheapest way to
///   hold a slot, so zero-byte sockets cannot lock anyone out).
///
/// Thread-safe: connections arrive on several event loops.
package final class ConnectionAdmission: Sendable {
    package struct Limits: Sendable, Equatable {
        package var maxSessions: Int
        package var startups: StartupLimits
        /// Most unauthenticated connections from one address (nil: no limit).
        package var perSource: Int?
        /// How long a connection may stay silent before it may be closed to make room.
        package var silentGrace: TimeAmount = .seconds(1)

        package init(maxSessions: Int, startups: StartupLimits, perSource: Int?) {
            self.maxSessions = max(1, maxSessions)
            self.startups = startups
            self.perSource = perSource.map { max(1, $0) }
        }
    }

    /// A connection as admission sees it.
    package struct Ticket: Sendable, Hashable {
        let id: UInt64
    }

    package enum Decision: Sendable {
        /// `evicted`: the address of a silent connection closed to make room, if one was.
        case admit(Ticket, evicted: String?)
        /// `reason` goes to the client (a clear Reject); `log` to the server log.
        case refuse(reason: String, log: String)
    }

    private struct Startup {
        var source: [UInt8]
        var opened: NIODeadline
        var silent: Bool
        var channel: Channel?
    }

    private struct State {
        var next: UInt64 = 0
        var startups: [UInt64: Startup] = [:]
        var perSource: [[UInt8]: Int] = [:]
        var sessions: Set<UInt64> = []
    }

    package let limits: Limits
    private let state = NIOLockedValueBox(State())
    private let roll: @Sendable () -> Int

    /// - Parameter roll: uniform in 0..<100 (injected for tests).
    package init(limits: Limits, roll: @escaping @Sendable () -> Int = { Int.random(in: 0..<100) }) {
        self.limits = limits
        self.roll = roll
    }

    package var unauthenticated: Int { state.withLockedValue { $0.startups.count } }
    package var sessions: Int { state.withLockedValue { $0.sessions.count } }

    /// Asked when a connection from `source` is accepted; `channel` may be closed later to make room.
    package func admit(source: [UInt8], channel: Channel?, now: NIODeadline = .now()) -> Decision {
        var evict: Channel?
        var evictedSource: [UInt8]?
        let decision = state.withLockedValue { s -> Decision in
            if s.sessions.count >= limits.maxSessions {
                return .refuse(
                    reason: "server busy: \(limits.maxSessions) sessions already open, try again later",
                    log: "\(limits.maxSessions) sessions already open (--max-connections)"
                )
            }
            if let cap = limits.perSource, s.perSource[source, default: 0] >= cap {
                return .refuse(
                    reason: "too many unauthenticated connections from your address, try again later",
                    log: "\(cap) unauthenticated connections from this address (--per-source-max-startups)"
                )
            }
            if limits.startups.refuses(current: s.startups.count, roll: roll()) {
                // Before refusing: the longest-silent connection, if one has sent nothing for the
                // grace time, goes instead, and this one is admitted.
                guard
                    let (id, victim) = s.startups.filter({
                        $0.value.silent && now - $0.value.opened >= limits.silentGrace
                    })
                    .min(by: { $0.value.opened < $1.value.opened })
                else {
                    return .refuse(
                        reason: "server busy: too many unauthenticated connections, try again later",
                        log: "\(s.startups.count) unauthenticated connections (--max-startups \(limits.startups))"
                    )
                }
                s.startups[id] = nil
                s.perSource[victim.source, default: 1] -= 1
                if s.perSource[victim.source] == 0 { s.perSource[victim.source] = nil }
                evict = victim.channel
                evictedSource = victim.source
            }
            s.next += 1
            s.startups[s.next] = Startup(source: source, opened: now, silent: true, channel: channel)
            s.perSource[source, default: 0] += 1
            return .admit(Ticket(id: s.next), evicted: evictedSource.map(Self.addressText))
        }
        evict?.close(promise: nil)
        return decision
    }

    /// An address as text (4 or 16 bytes; anything else in hex).
    static func addressText(_ bytes: [UInt8]) -> String {
        switch bytes.count {
        case 4: return bytes.map(String.init).joined(separator: ".")
        case 16:
            return stride(from: 0, to: 16, by: 2).map {
                String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16)
            }.joined(separator: ":")
        default: return bytes.map { String($0, radix: 16) }.joined()
        }
    }

    /// The connection sent its first bytes (it no longer counts as silent).
    package func heard(_ ticket: Ticket) {
        state.withLockedValue { s in s.startups[ticket.id]?.silent = false }
    }

    /// The connection's user logged in: it leaves the startups and becomes a session. False when
    /// the sessions are full (the caller refuses the login).
    package func authenticated(_ ticket: Ticket) -> Bool {
        state.withLockedValue { s in
            guard let startup = s.startups[ticket.id] else { return s.sessions.contains(ticket.id) }
            guard s.sessions.count < limits.maxSessions else { return false }
            s.startups[ticket.id] = nil
            s.perSource[startup.source, default: 1] -= 1
            if s.perSource[startup.source] == 0 { s.perSource[startup.source] = nil }
            s.sessions.insert(ticket.id)
            return true
        }
    }

    /// The connection closed (in whichever state).
    package func closed(_ ticket: Ticket) {
        state.withLockedValue { s in
            if let startup = s.startups.removeValue(forKey: ticket.id) {
                s.perSource[startup.source, default: 1] -= 1
                if s.perSource[startup.source] == 0 { s.perSource[startup.source] = nil }
            }
            s.sessions.remove(ticket.id)
        }
    }
}
