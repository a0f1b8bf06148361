import QNSPCrypto

/// The stealth layer's framing state machine for one connection (docs/protocol.md §9),
/// sans-I/O: feed received bytes with ``receive(_:deliver:)``, hand QNSP bytes to
/// ``seal(_:)`` and write what ``takeOutbound()`` returns, one socket write per element.
///
/// A server session answers nothing until a valid hello arrived; anything else makes it a
/// probe, which it only counts (``Event/closeProbe`` once the byte limit is reached) while
/// the driver enforces ``probeDeadline``. It never touches a socket, a clock or a timer.
public final class StealthSession {
    /// Which side this session is, with what the server shares between connections.
    public enum Role {
        case client
        case server(StealthReplayFilter)
    }

    /// The randomized limits of a server's probe discipline (§9.3).
    public struct ProbePolicy: Sendable {
        public var byteLimit: ClosedRange<Int> = 4096...32768
        /// Milliseconds after the accept.
        public var deadlineMilliseconds: ClosedRange<Int64> = 5_000...30_000
        public init() {}
        public init(byteLimit: ClosedRange<Int>, deadlineMilliseconds: ClosedRange<Int64>) {
            self.byteLimit = byteLimit
            self.deadlineMilliseconds = deadlineMilliseconds
        }
    }

    /// What a call to ``receive(_:deliver:)`` tells the driver, besides the delivered bytes.
    public enum Event: Sendable, Equatable {
        /// Server: the hello was valid; the deadline no longer applies and writes may flow.
        case accepted
        /// Server: a probe reached its byte limit: close the connection now (without writing).
        case closeProbe
    }

    // MARK: Wire constants

    public static let nonceSize = 32
    public static let headerSize = 2 + AEADAlgorithm.tagSize
    /// type, u16 padding length, tag.
    public static let bodyOverhead = 3 + AEADAlgorithm.tagSize
    public static let maxChunk = 16384
    public static let minChunk = 1024
    public static let maxPadding = 1024
    public static let maxDataPadding = 255
    public static let maxBodyLength = bodyOverhead + maxChunk + maxPadding
    public static let helloPayloadSize = 8
    public static let maxHelloBodyLength = bodyOverhead + helloPayloadSize + maxPadding
    /// The longest valid hello flight (nonce, header, body).
    public static let maxHelloFlight = nonceSize + headerSize + maxHelloBodyLength

    enum FrameType: UInt8 {
        case data = 0
        case hello = 1
        case padding = 2
    }

    private enum State {
        case clientAwaitingNonce
        case serverAwaitingHello
        case open
        case probe
        case failed
    }

    public let isClient: Bool
    private let secret: SecretBytes
    private let filter: StealthReplayFilter?
    private let clock: @Sendable () -> UInt64
    private var state: State
    private var sendCipher: AEADCipher?
    private var receiveCipher: AEADCipher?
    private var sendCounter: UInt64 = 0
    private var receiveCounter: UInt64 = 0
    private var clientNonce: [UInt8] = []
    /// Prefix for the next frame written (the server's `Rs`).
    private var pendingPrefix: [UInt8] = []
    private var outbound: [[UInt8]] = []
    /// QNSP bytes a server was asked to send before it accepted a hello.
    private var held: [[UInt8]] = []
    private var inbound: [UInt8] = []
    private var inboundStart = 0
    private var bodyLength: Int?
    private var received = 0
    private var rng = SystemRandomNumberGenerator()

    /// Server: total bytes after which an unaccepted connection is closed.
    public let probeByteLimit: Int
    /// Server: how long after the accept an unaccepted connection is closed.
    public let probeDeadline: Duration
    /// Why the last hello was refused (server, for logs and tests); nil while none was.
    public private(set) var refusal: String?
    /// Mimicry (§9.8): the client's flight starts with 24…64 printable characters.
    public let mimic: Bool
    private var mimicDone = false

    /// The characters of a mimicry prefix; the first one's index gives its length.
    static let mimicAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
    static let mimicMinimum = 24
    static let mimicSpan = 41

    /// - Parameter clock: Unix seconds (the hello's time, the replay window).
    /// - Parameter mimic: start the client's flight with a printable prefix (§9.8); both sides must agree.
    public init(
        role: Role, line: StealthLine, probePolicy: ProbePolicy = ProbePolicy(), mimic: Bool = false,
        clock: @escaping @Sendable () -> UInt64 = QNSPHandshakeGuard.wallClock
    ) throws(StealthError) {
        self.secret = line.secret
        self.mimic = mimic
        self.clock = clock
        self.probeByteLimit = Int.random(in: probePolicy.byteLimit, using: &rng)
        self.probeDeadline = .milliseconds(Int64.random(in: probePolicy.deadlineMilliseconds, using: &rng))
        switch role {
        case .client:
            isClient = true
            filter = nil
            state = .clientAwaitingNonce
            try startClient()
        case .server(let filter):
            isClient = false
            self.filter = filter
            state = .serverAwaitingHello
        }
    }

    /// A server session that refuses the connection whatever arrives (a refused `admit`):
    /// it follows the probe discipline from the start.
    public static func refusing(line: StealthLine, probePolicy: ProbePolicy = ProbePolicy()) throws(StealthError) -> StealthSession {
        let s = try StealthSession(role: .server(StealthReplayFilter(startTime: 0)), line: line, probePolicy: probePolicy)
        s.state = .probe
        s.refusal = "refused before reading"
        return s
    }

    /// Whether data flows (client: always after start; server: after a valid hello).
    public var isAccepted: Bool {
        switch state {
        case .open, .clientAwaitingNonce: return true
        case .serverAwaitingHello, .probe, .failed: return false
        }
    }

    public var isProbe: Bool { if case .probe = state { return true } else { return false } }

    // MARK: Keys

    private static func cipher(salt: [UInt8], secret: SecretBytes, label: String) throws(StealthError) -> AEADCipher {
        let prk = KeyDerivation.extract(salt: salt, secret: secret)
        let key = KeyDerivation.expandLabelSecret(secret: prk, label: label, context: [], length: AEADAlgorithm.keySize)
        defer { prk.wipe(); key.wipe() }
        do { return try AEADCipher(algorithm: .chaCha20Poly1305, key: key) } catch { throw .closed }
    }

    private static func nonce(_ counter: UInt64) -> [UInt8] {
        var n = [UInt8](repeating: 0, count: AEADAlgorithm.nonceSize)
        for i in 0..<8 { n[4 + i] = UInt8(truncatingIfNeeded: counter >> (56 - 8 * UInt64(i))) }
        return n
    }

    private func startClient() throws(StealthError) {
        clientNonce = SecureRandom.systemBytes(Self.nonceSize)
        sendCipher = try Self.cipher(salt: clientNonce, secret: secret, label: "stealth c2s")
        var time = [UInt8](repeating: 0, count: 8)
        let now = clock()
        for i in 0..<8 { time[i] = UInt8(truncatingIfNeeded: now >> (56 - 8 * UInt64(i))) }
        pendingPrefix = (mimic ? mimicPrefix() : []) + clientNonce
        try appendFrame(type: .hello, payload: time, padding: Int.random(in: 0...Self.maxPadding, using: &rng))
    }

    /// `c0 || c1 … c(n-1)`, all from ``mimicAlphabet``, `n = 24 + index(c0) mod 41`.
    private func mimicPrefix() -> [UInt8] {
        let first = Int.random(in: 0..<Self.mimicAlphabet.count, using: &rng)
        let n = Self.mimicMinimum + first % Self.mimicSpan
        return [Self.mimicAlphabet[first]] + (1..<n).map { _ in Self.mimicAlphabet[Int.random(in: 0..<Self.mimicAlphabet.count, using: &rng)] }
    }

    // MARK: Sending

    /// Frames QNSP bytes: random chunks of 1024…16384 bytes, each with 0…255 bytes of padding.
    /// A server that has not accepted a hello holds them (nothing is sent before acceptance).
    public func seal(_ bytes: UnsafeRawBufferPointer) throws(StealthError) {
        switch state {
        case .failed, .probe: throw .closed
        case .serverAwaitingHello:
            if bytes.count > 0 { held.append(Array(bytes)) }
            return
        case .open, .clientAwaitingNonce:
            break
        }
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, Int.random(in: Self.minChunk...Self.maxChunk, using: &rng))
            try appendFrame(
                type: .data, payload: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n]),
                padding: Int.random(in: 0...Self.maxDataPadding, using: &rng))
            offset += n
        }
    }

    public func seal(_ bytes: [UInt8]) throws(StealthError) {
        do { try bytes.withUnsafeBytes { raw in try seal(raw) } } catch let e as StealthError { throw e } catch { throw .closed }
    }

    /// Queues `count` padding frames of random sizes (cover traffic).
    public func sealPadding(count: Int) throws(StealthError) {
        guard case .open = state else { throw .closed }
        for _ in 0..<count {
            let size = Int.random(in: 0...Self.minChunk, using: &rng)
            try appendFrame(type: .padding, payload: [UInt8](repeating: 0, count: size), padding: Int.random(in: 0...Self.maxDataPadding, using: &rng))
        }
    }

    /// The bytes to write, one element per socket write.
    public func takeOutbound() -> [[UInt8]] {
        defer { outbound.removeAll(keepingCapacity: true) }
        return outbound
    }

    private func appendFrame(type: FrameType, payload: [UInt8], padding: Int) throws(StealthError) {
        do { try payload.withUnsafeBytes { raw in try appendFrame(type: type, payload: raw, padding: padding) } } catch let e as StealthError {
            throw e
        } catch { throw .closed }
    }

    private func appendFrame(type: FrameType, payload: UnsafeRawBufferPointer, padding: Int) throws(StealthError) {
        guard let cipher = sendCipher else { throw .closed }
        guard sendCounter < 1 << 62 else { throw .sequenceExhausted }
        let bodyLength = Self.bodyOverhead + payload.count + padding
        let prefix = pendingPrefix
        pendingPrefix = []
        var frame = [UInt8](repeating: 0, count: prefix.count + Self.headerSize + bodyLength)
        var plain = [UInt8](repeating: 0, count: bodyLength - AEADAlgorithm.tagSize)
        plain[0] = type.rawValue
        plain[1] = UInt8(padding >> 8)
        plain[2] = UInt8(padding & 0xff)
        plain.withUnsafeMutableBytes { dst in
            UnsafeMutableRawBufferPointer(rebasing: dst[3..<3 + payload.count]).copyMemory(from: payload)
        }
        let header: [UInt8] = [UInt8(bodyLength >> 8), UInt8(bodyLength & 0xff)]
        let n0 = Self.nonce(sendCounter), n1 = Self.nonce(sendCounter + 1)
        sendCounter += 2
        do {
            try frame.withUnsafeMutableBytes { out in
                for i in 0..<prefix.count { out[i] = prefix[i] }
                let h = UnsafeMutableRawBufferPointer(rebasing: out[prefix.count..<prefix.count + Self.headerSize])
                let b = UnsafeMutableRawBufferPointer(rebasing: out[(prefix.count + Self.headerSize)...])
                try n0.withUnsafeBytes { n in
                    try header.withUnsafeBytes { p in try cipher.seal(nonce: n, plaintext: p, into: h) }
                }
                try n1.withUnsafeBytes { n in
                    try plain.withUnsafeBytes { p in try cipher.seal(nonce: n, plaintext: p, into: b) }
                }
            }
        } catch {
            state = .failed
            throw .closed
        }
        ConstantTime.wipe(bytesOf: &plain)
        outbound.append(frame)
    }

    // MARK: Receiving

    /// Feeds received bytes; QNSP bytes from data frames go to `deliver` in order.
    /// A server never throws for a probe: it returns ``Event/closeProbe`` at the byte limit.
    public func receive(_ bytes: UnsafeRawBufferPointer, deliver: (UnsafeRawBufferPointer) -> Void) throws(StealthError) -> Event? {
        switch state {
        case .failed: throw .closed
        case .probe:
            received += bytes.count
            return received >= probeByteLimit ? .closeProbe : nil
        case .serverAwaitingHello:
            received += bytes.count
        case .open, .clientAwaitingNonce:
            break
        }
        inbound.append(contentsOf: bytes)
        var event: Event?
        do {
            while try step(deliver: deliver, accepted: &event) {}
        } catch {
            if case .serverAwaitingHello = state {
                becomeProbe(error.description)
            } else {
                state = .failed
                inbound = []
                throw error
            }
        }
        compact()
        if isProbe || (!isClient && state == .serverAwaitingHello) {
            return received >= probeByteLimit ? .closeProbe : event
        }
        return event
    }

    public func receive(_ bytes: [UInt8], deliver: (UnsafeRawBufferPointer) -> Void) throws(StealthError) -> Event? {
        do { return try bytes.withUnsafeBytes { raw in try receive(raw, deliver: deliver) } } catch let e as StealthError { throw e } catch {
            throw .closed
        }
    }

    /// The peer closed its side. Throws when it did so inside a frame of an accepted session.
    public func receiveEOF() throws(StealthError) {
        switch state {
        case .open, .clientAwaitingNonce:
            if inbound.count > inboundStart || bodyLength != nil { state = .failed; throw .truncated }
        case .serverAwaitingHello, .probe, .failed:
            break
        }
    }

    private func becomeProbe(_ why: String) {
        state = .probe
        refusal = why
        inbound = []
        inboundStart = 0
        held = []
    }

    private var available: Int { inbound.count - inboundStart }

    private func compact() {
        if inboundStart == inbound.count {
            inbound.removeAll(keepingCapacity: inbound.capacity <= 1 << 17)
            inboundStart = 0
        } else if inboundStart > 1 << 16 {
            inbound.removeFirst(inboundStart)
            inboundStart = 0
        }
    }

    /// Processes one unit (nonce, header or body); false when more bytes are needed.
    private func step(deliver: (UnsafeRawBufferPointer) -> Void, accepted: inout Event?) throws(StealthError) -> Bool {
        if mimic, !isClient, !mimicDone {
            guard available >= 1 else { return false }
            guard let first = Self.mimicAlphabet.firstIndex(of: inbound[inboundStart]) else { throw .badMimicryPrefix }
            let n = Self.mimicMinimum + first % Self.mimicSpan
            guard available >= n else { return false }
            guard inbound[inboundStart..<inboundStart + n].allSatisfy({ Self.mimicAlphabet.contains($0) }) else {
                throw .badMimicryPrefix
            }
            inboundStart += n
            mimicDone = true
            return true
        }
        if receiveCipher == nil {
            guard available >= Self.nonceSize else { return false }
            let nonce = Array(inbound[inboundStart..<inboundStart + Self.nonceSize])
            inboundStart += Self.nonceSize
            if isClient {
                receiveCipher = try Self.cipher(salt: clientNonce + nonce, secret: secret, label: "stealth s2c")
            } else {
                clientNonce = nonce
                receiveCipher = try Self.cipher(salt: nonce, secret: secret, label: "stealth c2s")
            }
            return true
        }
        guard let cipher = receiveCipher else { return false }
        guard let length = bodyLength else {
            guard available >= Self.headerSize else { return false }
            let header = try open(cipher, count: Self.headerSize)
            let n = Int(header[0]) << 8 | Int(header[1])
            let limit = state == .serverAwaitingHello ? Self.maxHelloBodyLength : Self.maxBodyLength
            guard n >= Self.bodyOverhead, n <= limit else { throw .invalidFrameLength(n) }
            bodyLength = n
            return true
        }
        guard available >= length else { return false }
        var body = try open(cipher, count: length)
        defer { ConstantTime.wipe(bytesOf: &body) }
        bodyLength = nil
        let padding = Int(body[1]) << 8 | Int(body[2])
        guard padding <= body.count - 3 else { throw .invalidFrameLength(length) }
        let payloadEnd = body.count - padding
        guard let type = FrameType(rawValue: body[0]) else { throw .unknownFrameType(body[0]) }
        if state == .serverAwaitingHello {
            guard type == .hello, payloadEnd - 3 == Self.helloPayloadSize else { throw .unknownFrameType(body[0]) }
            var time: UInt64 = 0
            for i in 3..<11 { time = time << 8 | UInt64(body[i]) }
            try acceptHello(time: time)
            accepted = .accepted
            return true
        }
        switch type {
        case .data:
            body.withUnsafeBytes { raw in deliver(UnsafeRawBufferPointer(rebasing: raw[3..<payloadEnd])) }
        case .padding:
            break
        case .hello:
            throw .unknownFrameType(type.rawValue)
        }
        if case .clientAwaitingNonce = state { state = .open }
        return true
    }

    private func open(_ cipher: AEADCipher, count: Int) throws(StealthError) -> [UInt8] {
        guard receiveCounter < 1 << 62 else { throw .sequenceExhausted }
        var out = [UInt8](repeating: 0, count: count - AEADAlgorithm.tagSize)
        let nonce = Self.nonce(receiveCounter)
        let start = inboundStart
        do {
            try inbound.withUnsafeBytes { raw in
                try nonce.withUnsafeBytes { n in
                    try out.withUnsafeMutableBytes { o in
                        try cipher.open(nonce: n, sealed: UnsafeRawBufferPointer(rebasing: raw[start..<start + count]), into: o)
                    }
                }
            }
        } catch {
            throw .frameAuthenticationFailed
        }
        receiveCounter += 1
        inboundStart += count
        return out
    }

    private func acceptHello(time: UInt64) throws(StealthError) {
        guard let filter else { throw .closed }
        let verdict = filter.check(nonce: clientNonce, time: Int64(clamping: time), now: Int64(clamping: clock()))
        guard verdict == .accepted else { throw .helloRefused("\(verdict)") }
        state = .open
        let serverNonce = SecureRandom.systemBytes(Self.nonceSize)
        sendCipher = try Self.cipher(salt: clientNonce + serverNonce, secret: secret, label: "stealth s2c")
        pendingPrefix = serverNonce
        let waiting = held
        held = []
        for bytes in waiting { try seal(bytes) }
    }
}

@available(*, unavailable)
extension StealthSession: Sendable {}
