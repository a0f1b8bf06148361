import NIOCore
import NIOEmbedded
import QNSP
import QNSPCrypto
@testable import QNSPNIO
import Synchronization
import Testing

/// A clock that moves only when told to.
final class TestClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }
    private let current = Mutex(Instant(offset: .zero))
    var now: Instant { current.withLock { $0 } }
    var minimumResolution: Duration { .nanoseconds(1) }
    func sleep(until deadline: Instant, tolerance: Duration?) async throws {}
    func advance(by d: Duration) { current.withLock { $0 = $0.advanced(by: d) } }
    /// Moves to the machine's next deadline and ticks it.
    func tickNext(_ machine: inout QNSPHandler.StateMachine<TestClock>) -> [QNSPHandler.StateMachine<TestClock>.Action] {
        if let deadline = machine.nextDeadline { current.withLock { $0 = max($0, deadline) } }
        return machine.tick()
    }
}

@Suite("QNSPHandler's state machine on a test clock")
struct HandlerStateMachineTests {
    typealias Machine = QNSPHandler.StateMachine<TestClock>

    func machine(_ configure: (inout Machine.Configuration) -> Void) -> (Machine, TestClock) {
        var c = Machine.Configuration()
        configure(&c)
        let clock = TestClock()
        return (Machine(configuration: c, clock: clock), clock)
    }

    @Test("handshake timeout: failure at the deadline, none once established")
    func handshakeTimeout() {
        var (m, clock) = machine { $0.handshakeTimeout = .seconds(30) }
        m.transportActive()
        #expect(m.nextDeadline == clock.now.advanced(by: .seconds(30)))
        clock.advance(by: .seconds(29))
        #expect(m.tick().isEmpty)  // early: nothing
        #expect(clock.tickNext(&m) == [.fail(.handshakeTimeout(seconds: 30))])
        var (ok, clock2) = machine { $0.handshakeTimeout = .seconds(30) }
        ok.transportActive()
        clock2.advance(by: .seconds(10))
        ok.established()
        #expect(ok.nextDeadline == nil)
        clock2.advance(by: .seconds(60))
        #expect(ok.tick().isEmpty)
    }

    @Test("keepalive: pings after each silent interval, failure after maxMissed; anything received resets it")
    func keepaliveMiss() {
        var (m, clock) = machine {
            $0.keepaliveInterval = .seconds(30)
            $0.keepaliveMaxMissed = 3
        }
        m.transportActive()
        m.established()
        #expect(clock.tickNext(&m) == [.sendPing])
        #expect(clock.now.offset == .seconds(30))
        clock.advance(by: .seconds(10))
        m.received(data: false)  // the pong
        #expect(m.nextDeadline == clock.now.advanced(by: .seconds(30)))
        #expect(clock.tickNext(&m) == [.sendPing])
        #expect(clock.tickNext(&m) == [.sendPing])
        #expect(clock.tickNext(&m) == [.fail(.peerUnresponsive(seconds: 90))])
        #expect(clock.now.offset == .seconds(40 + 90))
        #expect(m.nextDeadline == nil)
    }

    @Test("idle timeout: only application data counts; then an orderly close with code 3 and its drain")
    func idleTimeout() {
        var (m, clock) = machine {
            $0.idleTimeout = .seconds(60)
            $0.keepaliveInterval = .seconds(25)
            $0.keepaliveMaxMissed = 100
        }
        m.transportActive()
        m.established()
        clock.advance(by: .seconds(50))
        m.sent(data: true)
        // Pings and pongs do not keep it alive; data does.
        var actions: [Machine.Action] = []
        while !actions.contains(where: { if case .closeOrderly = $0 { return true } else { return false } }) {
            actions = clock.tickNext(&m)
            if actions == [.sendPing] { m.received(data: false) }
        }
        #expect(clock.now.offset == .seconds(110))
        #expect(actions.last == .closeOrderly(.idleTimeout, reason: "idle timeout (60 s without data)"))
        // The drain: the transport closes when the cells are out, or at the drain deadline.
        #expect(clock.tickNext(&m) == [.closeTransport])
        #expect(clock.now.offset == .seconds(120))
    }

    @Test("rekey by time: one update per interval, the interval restarting after a byte-limit update")
    func rekeyByTime() {
        var (m, clock) = machine { $0.rekeyInterval = .seconds(3600) }
        m.transportActive()
        m.established()
        #expect(clock.tickNext(&m) == [.updateKey])
        #expect(clock.now.offset == .seconds(3600))
        clock.advance(by: .seconds(1000))
        m.keyUpdated()  // the byte limit forced one
        #expect(m.nextDeadline == clock.now.advanced(by: .seconds(3600)))
        #expect(clock.tickNext(&m) == [.updateKey])
    }

    @Test("drain on close: the transport closes once drained, or at the deadline if the cells never leave")
    func drainOnClose() {
        var (m, clock) = machine { $0.drainTimeout = .seconds(10) }
        m.transportActive()
        m.established()
        m.closeRequested()
        clock.advance(by: .seconds(2))
        #expect(m.drained() == [.closeTransport])
        #expect(m.nextDeadline == nil)
        var (stuck, clock2) = machine { $0.drainTimeout = .seconds(10) }
        stuck.transportActive()
        stuck.established()
        stuck.closeRequested()
        #expect(clock2.tickNext(&stuck) == [.closeTransport])
        #expect(clock2.now.offset == .seconds(10))
        #expect(stuck.drained().isEmpty)  // already closed
    }

    @Test("rekey by bytes: a handler whose connection reaches the byte limit sends key updates and keeps delivering")
    func rekeyByBytes() throws {
        var configuration = QNSPConfiguration()
        configuration.rekeyAfterBytes = 10_000
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop)
        let server = EmbeddedChannel(loop: loop)
        let received = EmbeddedTests.Events()
        let serverConnection = QNSPConnection(server: NIOKeys.serverParameters, configuration: configuration)
        let clientConnection = QNSPConnection(client: NIOKeys.clientParameters(), configuration: configuration)
        try server.pipeline.syncOperations.addHandler(QNSPHandler(connection: serverConnection, isClient: false))
        try server.pipeline.syncOperations.addHandler(received)
        try client.pipeline.syncOperations.addHandler(QNSPHandler(connection: clientConnection, isClient: true))
        try server.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        try EmbeddedTests().shuttle(client, server)
        let payload = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        try client.writeAndFlush(ByteBuffer(bytes: payload)).wait()
        try EmbeddedTests().shuttle(client, server)
        #expect(received.data == payload)
        #expect(clientConnection.sendingEpoch >= 4)
        #expect(serverConnection.receivingEpoch == clientConnection.sendingEpoch)
    }
}
