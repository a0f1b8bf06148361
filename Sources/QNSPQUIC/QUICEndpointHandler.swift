import CNGTCP2
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
    private var byCID: [[UInt8]: QUICEndpointConnection] = [:]
    private(set) var connections: [ObjectIdentifier: QUICEndpointConnection] = [:]
    private var channel: Channel?
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
        datagramsIn += 1
        let datagram = envelope.data
        guard datagram.readableBytes > 0, let local = localAddress else {
            datagramsDropped += 1
            return
        }
        let now = cngtcp2_now()
        if let c = route(datagram) {
            c.conn.receive(datagram, from: envelope.remoteAddress, now: now)
            c.resumePipes()
            process(c)
            return
        }
        guard let server else {
            datagramsDropped += 1
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

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A datagram socket's errors (e.g. ICMP port unreachable) do not end the endpoint.
    }

    /// The connection a datagram's destination CID belongs to.
    private func route(_ datagram: ByteBuffer) -> QUICEndpointConnection? {
        guard let first = datagram.getInteger(at: datagram.readerIndex, as: UInt8.self) else { return nil }
        if first & 0x80 != 0 {
            // Long header: version (4), DCID length (1), DCID.
            guard let l = datagram.getInteger(at: datagram.readerIndex + 5, as: UInt8.self), l <= CNGTCP2_MAX_CIDLEN,
                let cid = datagram.getBytes(at: datagram.readerIndex + 6, length: Int(l))
            else { return nil }
            return byCID[cid]
        }
        guard let cid = datagram.getBytes(at: datagram.readerIndex + 1, length: Int(CNGTCP2_SCIDLEN)) else {
            return nil
        }
        return byCID[cid]
    }

    private func add(_ c: QUICEndpointConnection) {
        connections[ObjectIdentifier(c)] = c
    }

    /// Sends what a connection has to send, handles its events, updates routing and re-arms its timer.
    func process(_ c: QUICEndpointConnection) {
        var rounds = 0
        repeat {
            rounds += 1
            for e in c.conn.takeEvents() { c.handle(e) }
            let datagrams = c.conn.flush()
            if let channel, !datagrams.isEmpty {
                for d in datagrams {
                    channel.write(AddressedEnvelope(remoteAddress: d.destination, data: d.bytes), promise: nil)
                }
                channel.flush()
            }
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

    private func rearm(_ c: QUICEndpointConnection) {
        guard let expiry = c.conn.expiry else {
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
}
