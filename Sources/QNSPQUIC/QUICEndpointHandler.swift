import CNGTCP2
import Glibc
import NIOCore

/// The datagram channel's handler: routes each datagram by its destination CID to a connection
/// (or, on a server, to `QUICServerContext` for new ones), runs the connections' timers and sends
/// what they write. Everything runs on the channel's event loop.
final class QUICEndpointHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let loop: EventLoop
    let services: QUICServiceRegistry
    private let server: QUICServerContext?
    private var byCID: [[UInt8]: QUICEndpointConnection] = [:] {
        didSet { lastRoute = nil }  // any change of the routing table drops the cached route
    }
    /// The CID the last datagram was routed by and its connection: the datagrams of a burst mostly
    /// belong to one connection, and comparing the CID's bytes in place is cheaper than copying
    /// them into an array and hashing it for every datagram.
    private var lastRoute: (cid: [UInt8], connection: QUICEndpointConnection)?
    private(set) var connections: [ObjectIdentifier: QUICEndpointConnection] = [:]
    private(set) var channel: Channel?
    private(set) var localAddress: SocketAddress?
    /// Counters for tests and diagnostics.
    private(set) var datagramsIn = 0
    private(set) var datagramsDropped = 0
    let maxConnections: Int

    init(loop: EventLoop, services: QUICServiceRegistry, server: QUICServerContext?, maxConnections: Int) {
        self.loop = loop
        self.services = services
        self.server = server
        self.maxConnections = maxConnections
    }

    func channelActive(context: ChannelHandlerContext) {
        channel = context.channel
        localAddress = context.channel.localAddress
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard context.channel === channel else { return }  // a socket left behind by `rebind`
        for c in connections.values {
            c.timer?.cancel()
            c.handle(.closed(QUICError.connectionClosed))
        }
        connections.removeAll()
        byCID.removeAll()
        channel = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        // UDP receive offload (UDP_GRO): one buffer may hold several datagrams of `segmentSize`
        // bytes (the last one may be shorter), as the peer's GSO send left them.
        guard let size = envelope.metadata?.segmentSize, size > 0, envelope.data.readableBytes > size else {
            receive(envelope.data, from: envelope.remoteAddress, context: context)
            return
        }
        var rest = envelope.data
        while rest.readableBytes > 0, let one = rest.readSlice(length: min(size, rest.readableBytes)) {
            receive(one, from: envelope.remoteAddress, context: context)
        }
    }

    private func receive(_ datagram: ByteBuffer, from remote: SocketAddress, context: ChannelHandlerContext) {
        let envelope = AddressedEnvelope(remoteAddress: remote, data: datagram)
        datagramsIn += 1
        guard datagram.readableBytes > 0, let local = localAddress else {
            datagramsDropped += 1
            return
        }
        let now = cngtcp2_now()
        if let c = route(datagram) {
            // Datagrams of one read burst (up to maxMessagesPerRead) are fed first and the
            // connection is processed once in channelReadComplete: one flush (acks, stream data),
            // one timer re-arm and one write into each stream's socket per burst, not per packet.
            c.conn.receive(datagram, from: envelope.remoteAddress, now: now)
            if !c.pendingProcess {
                c.pendingProcess = true
                pending.append(c)
            }
            return
        }
        guard let server else {
            if !deliverPossibleReset(datagram, from: envelope.remoteAddress, now: now) { datagramsDropped += 1 }
            return
        }
        switch server.admit(datagram, from: envelope.remoteAddress, local: local, now: now) {
        case .drop:
            datagramsDropped += 1
        case .reply(let bytes):
            context.writeAndFlush(
                wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: bytes)),
                promise: nil
            )
        case .accept(let conn, let initialDCID):
            guard connections.count < maxConnections else {
                datagramsDropped += 1
                return
            }
            let c = QUICEndpointConnection(conn: conn, endpoint: self, remote: envelope.remoteAddress)
            add(c)
            byCID[initialDCID] = c
            c.cids.insert(initialDCID)
            conn.receive(datagram, from: envelope.remoteAddress, now: now)
            process(c)
        }
    }

    /// Connections that received datagrams in the current read burst.
    private var pending: [QUICEndpointConnection] = []

    func channelReadComplete(context: ChannelHandlerContext) {
        processPending()
    }

    private func processPending() {
        while !pending.isEmpty {
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            for c in batch {
                c.pendingProcess = false
                process(c)
                c.updateWritability()
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A datagram socket's errors (e.g. ICMP port unreachable) do not end the endpoint.
    }

    /// The connection a datagram's destination CID belongs to.
    private func route(_ datagram: ByteBuffer) -> QUICEndpointConnection? {
        guard let first = datagram.getInteger(at: datagram.readerIndex, as: UInt8.self) else { return nil }
        let offset: Int
        let length: Int
        if first & 0x80 != 0 {
            // Long header: version (4), DCID length (1), DCID.
            guard let l = datagram.getInteger(at: datagram.readerIndex + 5, as: UInt8.self), l <= CNGTCP2_MAX_CIDLEN
            else { return nil }
            (offset, length) = (6, Int(l))
        } else {
            (offset, length) = (1, Int(CNGTCP2_SCIDLEN))
        }
        guard datagram.readableBytes >= offset + length else { return nil }
        if let last = lastRoute, last.cid.count == length,
            datagram.withUnsafeReadableBytes({ bytes in
                last.cid.withUnsafeBytes { cid in
                    guard let b = bytes.baseAddress, let c = cid.baseAddress else { return false }
                    return memcmp(b + offset, c, length) == 0
                }
            })
        {
            return last.connection
        }
        guard let cid = datagram.getBytes(at: datagram.readerIndex + offset, length: length) else { return nil }
        guard let c = byCID[cid] else { return nil }
        lastRoute = (cid, c)
        return c
    }

    private func add(_ c: QUICEndpointConnection) {
        connections[ObjectIdentifier(c)] = c
    }

    /// Sends what a connection has to send, handles its events, updates routing and re-arms its timer.
    func process(_ c: QUICEndpointConnection) {
        guard !c.forgotten else { return }
        let nested = c.processing
        c.processing = true
        defer { c.processing = nested }
        var rounds = 0
        repeat {
            rounds += 1
            for e in c.conn.takeEvents() { c.handle(e) }
            if c.hasDeliveries {
                // Bulk data is acknowledged before the stream channels work on it, so that the
                // sender's ACK clock does not wait for QNSP, SSH-2 and their consumers; a small
                // piece goes up at once, and its acknowledgement rides in the reply.
                if c.deliveredSinceFlush > Self.replyWindowBytes { flush(c) }
                c.deliverPending()
            }
            if holdsAcknowledgement(c) { continue }
            flush(c)
        } while rounds < 4 && hasEvents(c)
        for change in c.conn.takeCIDChanges() {
            if change.added {
                byCID[change.cid] = c
                c.cids.insert(change.cid)
            } else if byCID[change.cid] === c {
                byCID[change.cid] = nil
                c.cids.remove(change.cid)
            }
        }
        if c.conn.isClosed {
            for e in c.conn.takeEvents() { c.handle(e) }
            c.deliverPending()
            c.timer?.cancel()
            c.timer = nil
            for cid in c.cids where byCID[cid] === c { byCID[cid] = nil }
            c.cids.removeAll()
            connections[ObjectIdentifier(c)] = nil
            return
        }
        rearm(c)
    }

    private func hasEvents(_ c: QUICEndpointConnection) -> Bool { c.conn.hasPendingEvents }

    /// Sends everything the connection has ready (no acknowledgement waits any longer).
    private func flush(_ c: QUICEndpointConnection) {
        c.deliveredSinceFlush = 0
        c.replyDeadline = 0
        c.acknowledgeNow = false
        let datagrams = c.conn.flush(segments: gsoSegments)
        if let channel, !datagrams.isEmpty {
            send(datagrams, on: channel)
            channel.flush()
        }
    }

    /// How long an acknowledgement of one small piece of stream data may wait for the reply that
    /// the stream's consumer writes (so that the ACK rides in the reply's packet). Far below the
    /// peer's loss-detection timeout, which includes our max_ack_delay (25 ms).
    static let replyWindow: UInt64 = 2_000_000  // ns

    /// Largest delivery since the last flush whose acknowledgement may wait: one packet's worth.
    /// A second packet of data is acknowledged at once (as ngtcp2's ack threshold of 2 wants), so
    /// bulk transfers are not slowed.
    static let replyWindowBytes = Int(CNGTCP2_MAX_UDP_PAYLOAD)

    /// True if this flush should wait: the connection would send only acknowledgements and
    /// control frames, and what it acknowledges is one small piece of stream data delivered to a
    /// stream channel within the reply window. Without the wait, every request/response exchange (QNSP
    /// and SSH-2 messages, keystrokes) costs an ACK-only packet each way besides the reply; the
    /// ACK-only packet's number leaves a gap before the reply's, which makes the peer's ngtcp2
    /// acknowledge the reply at once in turn, and each such packet wakes the other process.
    private func holdsAcknowledgement(_ c: QUICEndpointConnection) -> Bool {
        guard c.deliveredSinceFlush > 0, c.deliveredSinceFlush <= Self.replyWindowBytes, !c.acknowledgeNow,
            c.conn.alpn != nil, !c.conn.isClosed, !c.conn.hasUrgentOutput
        else { return false }
        let now = cngtcp2_now()
        if c.replyDeadline == 0 { c.replyDeadline = now + Self.replyWindow }
        return now < c.replyDeadline
    }

    /// UDP generic segmentation offload (`UDP_SEGMENT`): runs of equal-size datagrams to one
    /// destination (the last may be shorter) leave in one send, which the kernel splits. 1: off.
    /// (Linux takes up to 64 segments a send since 4.18, 128 since 5.5.)
    private var gsoSegments = System.supportsUDPSegmentationOffload ? 64 : 1

    private func send(_ datagrams: [QUICConnection.Datagram], on channel: Channel) {
        for d in datagrams {
            guard let size = d.segmentSize else {
                channel.write(AddressedEnvelope(remoteAddress: d.destination, data: d.bytes), promise: nil)
                continue
            }
            let metadata = AddressedEnvelope<ByteBuffer>.Metadata(ecnState: .transportNotCapable, packetInfo: nil, segmentSize: size)
            let promise = loop.makePromise(of: Void.self)
            // Plain sends from now on only when the path cannot offload at all; a transient
            // failure (ENOBUFS, EAGAIN...) is one lost packet, which QUIC retransmits.
            promise.futureResult.whenFailure { [weak self] error in
                if Self.meansNoSegmentationOffload(error) { self?.gsoSegments = 1 }
            }
            channel.write(AddressedEnvelope(remoteAddress: d.destination, data: d.bytes, metadata: metadata), promise: promise)
        }
    }

    /// True for the errors of a path or kernel without UDP_SEGMENT support (EIO, EINVAL, EOPNOTSUPP).
    static func meansNoSegmentationOffload(_ error: Error) -> Bool {
        guard let io = error as? IOError else { return false }
        return io.errnoCode == EIO || io.errnoCode == EINVAL || io.errnoCode == EOPNOTSUPP
    }

    private func rearm(_ c: QUICEndpointConnection) {
        // While an acknowledgement waits for a reply, the timer runs at the end of that wait or at
        // ngtcp2's own next deadline (loss detection, pacing, its ACK timer), whichever is first.
        let ownExpiry = c.conn.expiry
        guard let expiry = c.replyDeadline != 0 ? min(c.replyDeadline, ownExpiry ?? .max) : ownExpiry else {
            c.timer?.cancel()
            c.timer = nil
            c.timerDeadline = .max
            return
        }
        if expiry == c.timerDeadline && c.timer != nil { return }
        c.timer?.cancel()
        c.timerDeadline = expiry
        let now = cngtcp2_now()
        let delay = expiry > now ? Int64(min(expiry - now, UInt64(Int64.max))) : 0
        c.timer = loop.scheduleTask(in: .nanoseconds(delay)) { [weak c] in
            guard let c else { return }
            c.timer = nil
            c.timerDeadline = .max
            c.conn.handleTimeout()
            c.endpoint.process(c)
        }
    }

    // MARK: Client side

    func connect(
        to remote: SocketAddress,
        alpn: String,
        credentials: QUICCredentials,
        parameters: QUICConnection.Parameters
    )
        -> EventLoopFuture<QUICClient>
    {
        guard let local = localAddress else { return loop.makeFailedFuture(QUICError.connectionClosed) }
        do {
            let conn = try QUICConnection(
                clientTo: remote,
                localAddress: local,
                alpn: alpn,
                credentials: credentials,
                parameters: parameters
            )
            let c = QUICEndpointConnection(conn: conn, endpoint: self, remote: remote)
            let promise = loop.makePromise(of: QUICClient.self)
            c.handshakePromise = promise
            add(c)
            process(c)
            return promise.futureResult
        } catch {
            return loop.makeFailedFuture(error)
        }
    }

    var connectionCount: Int { connections.count }

    // MARK: Roaming

    /// Client roaming: binds a fresh UDP socket on `host` (a new port), moves every client
    /// connection to it (connection migration, validated by the server) and closes the old one.
    /// Returns the new local address.
    func rebind(host: String) -> EventLoopFuture<SocketAddress> {
        let forwarder = QUICSocketForwarder(target: self)
        return QUICEndpoint.datagramBootstrap(group: loop) { ch in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(forwarder) }
        }
        .bind(host: host, port: 0)
        .flatMapThrowing { ch in
            guard let local = ch.localAddress else { throw QUICError.connectionClosed }
            let old = self.channel
            self.channel = ch
            self.localAddress = local
            var failure: Error?
            for c in self.connections.values where c.conn.isClient && !c.conn.isClosed {
                do { try c.conn.migrate(to: local) } catch { failure = error }
                self.process(c)
            }
            old?.close(promise: nil)
            if let failure { throw failure }
            return local
        }
    }

    // MARK: Test hooks

    /// Drops every connection's state without sending anything, as a server that lost it would
    /// (the endpoint's reset secret stays): the peers' next packets get stateless resets.
    /// Returns how many connections were dropped.
    func forgetConnections() -> Int {
        let n = connections.count
        for c in connections.values {
            c.forgotten = true
            c.timer?.cancel()
            c.timer = nil
            for channel in c.streams.values { channel.streamEnded() }
            c.streams.removeAll()
        }
        connections.removeAll()
        byCID.removeAll()
        return n
    }
}
