import Crypto
import QNSPCrypto

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A server's defence against unauthenticated handshake work, shared by all its connections:
/// it decides, before any KEM or signature work, whether a ClientHello is served, answered with
/// a Retry (stateless cookie round), or refused (docs/protocol.md 4.6).
///
/// - **Replay filter**: the hash of every served hello's static encapsulation is remembered for
///   at least `2 × clockSkew + cookieLifetime`; a hello seen before is refused. A hello whose
///   time is outside `±clockSkew` gets a Retry instead (it carries the server's clock, so a client
///   with a wrong clock still connects, one round trip later), so an old hello can never be served.
/// - **Cookies**: under load (or always, by policy) a hello without a valid cookie gets a Retry
///   whose cookie is a MAC over the time, the client's address and the hello's encapsulation.
///   The server keeps no state for it; only a client that receives the Retry can answer it, and
///   only with a freshly sealed hello (the cookie is inside the authenticated prefix).
/// - **Rate limit**: each source address may start a bounded number of handshakes per second.
///
/// Thread-safe (one lock); the clock is injected so that tests control time.
public final class QNSPHandshakeGuard: Sendable {
    /// When cookies are demanded.
    public enum CookieMode: String, Sendable, CaseIterable {
        case never, auto, always
    }

    /// Tunables (docs/protocol.md 4.6 gives the defaults' reasons).
    public struct Policy: Sendable {
        /// Largest accepted difference between a hello's time and the server's clock, in seconds.
        public var clockSkew: UInt64 = 60
        /// How long a Retry's cookie stays valid, in seconds.
        public var cookieLifetime: UInt64 = 30
        public var cookies: CookieMode = .auto
        /// With `.auto`: demand cookies once more hellos than this arrive within one second.
        public var autoCookieHellosPerSecond = 50
        /// Handshakes one source address may start: burst size and refill per second (0: no limit).
        public var perSourceBurst = 256
        public var perSourcePerSecond = 64
        /// Most remembered hellos per generation; beyond it new hellos are refused (fail closed).
        public var maxRememberedHellos = 1_000_000
        public init() {}
    }

    /// The decision about one ClientHello.
    public enum Verdict: Sendable, Equatable {
        case proceed
        case retry(HandshakeMessages.Retry)
        case replayed
        case expiredCookie
        case rateLimited
        case overloaded
    }

    /// What the guard did, for logs and tests.
    public struct Statistics: Sendable, Equatable {
        public var served = 0
        public var retries = 0
        public var replays = 0
        public var rateLimited = 0
    }

    public let policy: Policy
    private let key: [UInt8]
    private let clock: @Sendable () -> UInt64
    private let underLoad: @Sendable () -> Bool
    private let state: LockedState<State>

    private struct Bucket {
        var tokens: Double
        var updated: UInt64
    }

    private struct State {
        var current = Set<UInt64>()
        var previous = Set<UInt64>()
        var rotatedAt: UInt64
        var secondStart: UInt64
        var hellosThisSecond = 0
        var hellosLastSecond = 0
        var sources: [[UInt8]: Bucket] = [:]
        var statistics = Statistics()
    }

    /// - Parameters:
    ///   - clock: Unix time in seconds (the wall clock by default).
    ///   - underLoad: the server's own load signal (e.g. many unauthenticated connections); with
    ///     `.auto`, cookies are demanded while it returns true.
    public init(
        policy: Policy = Policy(),
        clock: @escaping @Sendable () -> UInt64 = QNSPHandshakeGuard.wallClock,
        underLoad: @escaping @Sendable () -> Bool = { false }
    ) {
        self.policy = policy
        self.clock = clock
        self.underLoad = underLoad
        self.key = (try? SecureRandom().bytes(32)) ?? Array(SHA256.hash(data: Array("\(clock())".utf8)))
        let now = clock()
        state = LockedState(State(rotatedAt: now, secondStart: now))
    }

    /// Seconds since 1970 from the system clock.
    public static let wallClock: @Sendable () -> UInt64 = { UInt64(max(0, time(nil))) }

    public var now: UInt64 { clock() }

    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// How long a served hello is remembered at least.
    var memory: UInt64 { 2 * policy.clockSkew + policy.cookieLifetime + 1 }

    /// Decides about a hello from `peer` (address bytes); `retried` is true when this connection
    /// already received a Retry. A `.proceed` remembers the hello (a second one is a replay).
    public func check(_ hello: HandshakeMessages.ClientHello, peer: [UInt8], retried: Bool) -> Verdict {
        let now = clock()
        let fingerprint = Self.fingerprint(hello.encapsulation)
        let cookieValid =
            !hello.cookie.isEmpty && verifyCookie(hello.cookie, now: now, peer: peer, fingerprint: fingerprint)
        return state.withLock { s -> Verdict in
            roll(&s, now: now)
            s.hellosThisSecond += 1
            if !takeToken(&s, peer: peer, now: now) {
                s.statistics.rateLimited += 1
                return .rateLimited
            }
            if !hello.cookie.isEmpty && !cookieValid {
                return .expiredCookie
            }
            if s.current.contains(fingerprint) || s.previous.contains(fingerprint) {
                s.statistics.replays += 1
                return .replayed
            }
            if !cookieValid && !retried {
                let skewed = hello.time > now + policy.clockSkew || hello.time + policy.clockSkew < now
                let loaded: Bool
                switch policy.cookies {
                case .never: loaded = false
                case .always: loaded = true
                case .auto:
                    loaded =
                        max(s.hellosThisSecond, s.hellosLastSecond) > policy.autoCookieHellosPerSecond || underLoad()
                }
                if skewed || loaded {
                    s.statistics.retries += 1
                    return .retry(
                        HandshakeMessages.Retry(
                            serverTime: now,
                            cookie: makeCookie(now: now, peer: peer, fingerprint: fingerprint)
                        )
                    )
                }
            }
            if !cookieValid {
                // A hello sent after a Retry must carry the cookie; one with a skewed clock is refused.
                if retried || hello.time > now + policy.clockSkew || hello.time + policy.clockSkew < now {
                    return .expiredCookie
                }
            }
            guard s.current.count < policy.maxRememberedHellos else { return .overloaded }
            s.current.insert(fingerprint)
            s.statistics.served += 1
            return .proceed
        }
    }

    /// Whether `peer` may have a host key announcement now (the same per-source budget as hellos).
    public func allowAnnouncement(peer: [UInt8]) -> Bool {
        let now = clock()
        return state.withLock { s in
            roll(&s, now: now)
            guard takeToken(&s, peer: peer, now: now) else {
                s.statistics.rateLimited += 1
                return false
            }
            return true
        }
    }

    private func roll(_ s: inout State, now: UInt64) {
        if now >= s.rotatedAt + memory {
            // Entries live between one and two memory spans; after two, nothing is left.
            s.previous = now >= s.rotatedAt + 2 * memory ? [] : s.current
            s.current.removeAll(keepingCapacity: true)
            s.rotatedAt = now
        }
        if now != s.secondStart {
            s.hellosLastSecond = now == s.secondStart + 1 ? s.hellosThisSecond : 0
            s.hellosThisSecond = 0
            s.secondStart = now
        }
    }

    private func takeToken(_ s: inout State, peer: [UInt8], now: UInt64) -> Bool {
        guard policy.perSourcePerSecond > 0, policy.perSourceBurst > 0 else { return true }
        let burst = Double(policy.perSourceBurst)
        var bucket = s.sources[peer] ?? Bucket(tokens: burst, updated: now)
        bucket.tokens = min(burst, bucket.tokens + Double(now &- bucket.updated) * Double(policy.perSourcePerSecond))
        bucket.updated = now
        guard bucket.tokens >= 1 else {
            s.sources[peer] = bucket
            return false
        }
        bucket.tokens -= 1
        if s.sources.count >= 10_000 && s.sources[peer] == nil {
            // Bounded memory: forget sources whose buckets have refilled.
            s.sources = s.sources.filter {
                min(burst, $0.value.tokens + Double(now &- $0.value.updated) * Double(policy.perSourcePerSecond))
                    < burst
            }
        }
        s.sources[peer] = bucket
        return true
    }

    // MARK: Cookies

    static let cookieLabel = Array("qnsp1 cookie".utf8)
    static let cookieMACSize = 16

    static func fingerprint(_ encapsulation: [UInt8]) -> UInt64 {
        SHA256.hash(data: encapsulation).withUnsafeBytes { raw in raw.loadUnaligned(as: UInt64.self) }
    }

    func mac(time: UInt64, peer: [UInt8], fingerprint: UInt64) -> [UInt8] {
        var w = ByteWriter()
        w.write(bytes: Self.cookieLabel)
        w.write(time)
        w.writeVector8(peer.prefix(255))
        w.write(fingerprint)
        let code = HMAC<SHA256>.authenticationCode(for: w.bytes, using: SymmetricKey(data: key))
        return Array(Array(code).prefix(Self.cookieMACSize))
    }

    /// cookie = u32(time mod 2^32) || MAC(time, peer, H(encapsulation))[0..<16].
    func makeCookie(now: UInt64, peer: [UInt8], fingerprint: UInt64) -> [UInt8] {
        var w = ByteWriter()
        w.write(UInt32(truncatingIfNeeded: now))
        w.write(bytes: mac(time: now, peer: peer, fingerprint: fingerprint))
        return w.bytes
    }

    func verifyCookie(_ cookie: [UInt8], now: UInt64, peer: [UInt8], fingerprint: UInt64) -> Bool {
        guard cookie.count == 4 + Self.cookieMACSize else { return false }
        let low = UInt32(cookie[0]) << 24 | UInt32(cookie[1]) << 16 | UInt32(cookie[2]) << 8 | UInt32(cookie[3])
        let age = UInt64(UInt32(truncatingIfNeeded: now) &- low)
        guard age <= policy.cookieLifetime, age <= now else { return false }
        return ConstantTime.equals(cookie[4...], mac(time: now - age, peer: peer, fingerprint: fingerprint))
    }
}
