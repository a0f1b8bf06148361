import CNGTCP2
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One QUIC connection (client or server) as a sans-I/O state machine over ngtcp2: feed it
/// datagrams and timer expiries, take events and datagrams out. It never touches a socket.
/// Confined to one thread (its endpoint's event loop); the class is not thread-safe.
public final class QUICConnection {
    /// What happened on the connection since the last `takeEvents()`.
    public enum Event: Equatable {
        case handshakeCompleted(alpn: String)
        /// The peer opened a bidirectional stream.
        case streamOpened(Int64)
        /// Bytes received on a stream (in order); `fin`: the peer finished its direction.
        case streamData(Int64, ByteBuffer, fin: Bool)
        /// The stream is gone in both directions (`code`: the application error of a reset, else 0).
        case streamClosed(Int64, code: UInt64)
        /// The connection is over (nil: closed cleanly or idle).
        case closed(QUICError?)
    }

    /// A datagram to send, or with `segmentSize` a run of datagrams for UDP segmentation offload
    /// (`UDP_SEGMENT`): `bytes` holds packets of `segmentSize` bytes each, the last one may be shorter.
    public struct Datagram {
        public var bytes: ByteBuffer
        public var destination: SocketAddress
        public var segmentSize: Int?

        public init(bytes: ByteBuffer, destination: SocketAddress, segmentSize: Int? = nil) {
            self.bytes = bytes
            self.destination = destination
            self.segmentSize = segmentSize
        }
    }

    /// Packets being gathered into one `Datagram` run during a flush.
    private struct Run {
        var bytes: ByteBuffer
        var destination: SocketAddress
        var size: Int  // of the first packet
        var count = 1
        var short = false  // the last packet is shorter than `size`: the run is complete
    }
    private var run: Run?
    private var runLimit = 1

    /// Transport parameters (sizes in bytes).
    public struct Parameters: Sendable {
        public var maxData: UInt64 = 16 << 20
        public var maxStreamData: UInt64 = 4 << 20
        public var maxStreamsBidi: UInt64 = 100
        public var idleTimeout: TimeAmount = .seconds(60)
        public var handshakeTimeout: TimeAmount = .seconds(10)
        public init() {}

        var c: cngtcp2_params {
            cngtcp2_params(
                max_data: maxData,
                max_stream_data: maxStreamData,
                max_streams_bidi: maxStreamsBidi,
                idle_timeout_ns: UInt64(max(0, idleTimeout.nanoseconds)),
                handshake_timeout_ns: UInt64(max(0, handshakeTimeout.nanoseconds))
            )
        }
    }

    public let isClient: Bool
    private var handle: OpaquePointer?
    private var events: [Event] = []
    private var sendBuffers: [Int64: QUICSendBuffer] = [:]
    private var blocked: Set<Int64> = []
    private var closedReported = false
    private let allocator = ByteBufferAllocator()
    private var out = [UInt8](repeating: 0, count: Int(CNGTCP2_MAX_UDP_PAYLOAD))
    /// The negotiated ALPN, once the handshake completed.
    public private(set) var alpn: String?
    /// CIDs this end issued (added: true) or retired since the last `takeCIDChanges()`.
    package private(set) var cidChanges: [(added: Bool, cid: [UInt8])] = []
    /// The local address datagrams arrive on (the endpoint's bound address).
    public var localAddress: SocketAddress

    private init(isClient: Bool, localAddress: SocketAddress) {
        self.isClient = isClient
        self.localAddress = localAddress
    }

    /// A client connection to `remote`, offering `alpn`.
    public convenience init(
        clientTo remote: SocketAddress,
        localAddress: SocketAddress,
        alpn: String,
        credentials: QUICCredentials,
        parameters: Parameters = Parameters()
    ) throws {
        guard !alpn.isEmpty, alpn.utf8.count <= 255 else { throw QUICError.invalidArgument("ALPN must be 1-255 bytes") }
        self.init(isClient: true, localAddress: localAddress)
        var cb = Self.callbacks
        var params = parameters.c
        var err: Int32 = 0
        let owner = Unmanaged.passUnretained(self).toOpaque()
        let alpnBytes = Array(alpn.utf8)
        handle = try localAddress.withSockAddr { lp, ll in
            try remote.withSockAddr { rp, rl in
                guard
                    let h = cngtcp2_client_new(
                        &cb,
                        owner,
                        credentials.handle,
                        lp,
                        socklen_t(ll),
                        rp,
                        socklen_t(rl),
                        alpnBytes,
                        alpnBytes.count,
                        &params,
                        &err
                    )
                else { throw QUICError.lib(err) }
                return h
            }
        }
        recordInitialCIDs()
    }

    /// A server connection for an accepted first packet (`QUICServerContext` makes these).
    init(
        serverFor initial: inout cngtcp2_initial,
        originalDCID: [UInt8]?,
        remote: SocketAddress,
        localAddress: SocketAddress,
        alpnWire: [UInt8],
        secret: [UInt8],
        credentials: QUICCredentials,
        parameters: Parameters
    ) throws {
        self.isClient = false
        self.localAddress = localAddress
        var cb = Self.callbacks
        var params = parameters.c
        var err: Int32 = 0
        let owner = Unmanaged.passUnretained(self).toOpaque()
        let odcid = originalDCID ?? []
        let h: OpaquePointer? = localAddress.withSockAddr { lp, ll in
            remote.withSockAddr { rp, rl in
                cngtcp2_server_new(
                    &cb,
                    owner,
                    credentials.handle,
                    lp,
                    socklen_t(ll),
                    rp,
                    socklen_t(rl),
                    &initial,
                    odcid.isEmpty ? nil : odcid,
                    odcid.count,
                    alpnWire,
                    alpnWire.count,
                    secret,
                    &params,
                    &err
                )
            }
        }
        guard let h else { throw QUICError.lib(err) }
        handle = h
        recordInitialCIDs()
    }

    deinit {
        for id in sendBuffers.keys { sendBuffers[id]?.release() }
        cngtcp2_conn_free(handle)
    }

    private func recordInitialCIDs() {
        var ids = [UInt8](repeating: 0, count: Int(CNGTCP2_MAX_CIDLEN) * 8)
        var lens = [Int](repeating: 0, count: 8)
        let n = cngtcp2_scids(handle, &ids, &lens, 8)
        for i in 0..<n {
            let start = i * Int(CNGTCP2_MAX_CIDLEN)
            cidChanges.append((true, Array(ids[start..<start + lens[i]])))
        }
    }

    // MARK: Input

    /// Feeds one datagram from `remote`.
    public func receive(_ datagram: ByteBuffer, from remote: SocketAddress, now: UInt64 = cngtcp2_now()) {
        guard let handle, !closedReported, datagram.readableBytes > 0 else { return }
        blocked.removeAll()  // a packet may carry MAX_DATA / MAX_STREAM_DATA
        let rv: Int32 = datagram.withUnsafeReadableBytes { bytes in
            localAddress.withSockAddr { lp, ll in
                remote.withSockAddr { rp, rl in
                    cngtcp2_read(
                        handle,
                        lp,
                        socklen_t(ll),
                        rp,
                        socklen_t(rl),
                        bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                        bytes.count,
                        now
                    )
                }
            }
        }
        if rv != 0 { fail(rv) }
    }

    /// The timer fired.
    public func handleTimeout(now: UInt64 = cngtcp2_now()) {
        guard let handle, !closedReported else { return }
        let rv = cngtcp2_handle_expiry(handle, now)
        if rv == CNGTCP2_ERR_IDLE_CLOSE {
            report(closed: nil)
        } else if rv != 0 {
            fail(rv)
        }
    }

    /// When `handleTimeout` must run next (ngtcp2 monotonic nanoseconds), nil if never.
    public var expiry: UInt64? {
        guard let handle, !closedReported else { return nil }
        let e = cngtcp2_expiry(handle)
        return e == UInt64.max ? nil : e
    }

    public var isClosed: Bool { closedReported }

    public var hasPendingEvents: Bool { !events.isEmpty }

    public func takeEvents() -> [Event] {
        defer { events.removeAll(keepingCapacity: true) }
        return events
    }

    package func takeCIDChanges() -> [(added: Bool, cid: [UInt8])] {
        defer { cidChanges.removeAll() }
        return cidChanges
    }

    // MARK: Streams

    /// Opens a bidirectional stream.
    public func openStream() throws -> Int64 {
        guard let handle, !closedReported else { throw QUICError.connectionClosed }
        var id: Int64 = -1
        let rv = cngtcp2_open_bidi(handle, &id)
        guard rv == 0 else { throw QUICError.lib(rv) }
        sendBuffers[id] = QUICSendBuffer()
        return id
    }

    /// Queues bytes on a stream (the buffer is kept, not copied, until acknowledged; sent by `flush`).
    public func write(stream id: Int64, _ bytes: ByteBuffer) {
        guard !closedReported, var buffer = sendBuffers.removeValue(forKey: id), !buffer.finQueued else { return }
        buffer.append(bytes)
        sendBuffers[id] = buffer
    }

    /// Finishes this end's direction of a stream once the queued bytes are sent.
    public func finish(stream id: Int64) {
        sendBuffers[id]?.finQueued = true
    }

    /// Moves a client connection to a new local address (connection migration): ngtcp2 validates
    /// the new path with the server and sends from it from now on.
    package func migrate(to local: SocketAddress, now: UInt64 = cngtcp2_now()) throws {
        guard let handle, !closedReported else { throw QUICError.connectionClosed }
        guard isClient else { throw QUICError.invalidArgument("only a client migrates") }
        let rv = local.withSockAddr { p, l in cngtcp2_migrate(handle, p, socklen_t(l), now) }
        guard rv == 0 else { throw QUICError.lib(rv) }
        localAddress = local
    }

    /// Resets a stream in both directions.
    public func reset(stream id: Int64, code: UInt64) {
        guard let handle, !closedReported else { return }
        _ = cngtcp2_shutdown_stream(handle, id, code)
    }

    /// True if a flush would send more than acknowledgements and control frames: stream data
    /// (or a FIN) not yet handed to ngtcp2 on a stream that is not flow-control blocked, a pending
    /// close, or a CONNECTION_CLOSE written after a failed read.
    var hasUrgentOutput: Bool {
        if pendingClose || !queuedOnFailure.isEmpty { return true }
        for (id, buffer) in sendBuffers where buffer.hasUnsent && !blocked.contains(id) { return true }
        return false
    }

    /// Bytes queued on a stream and not yet acknowledged (for backpressure).
    public func buffered(stream id: Int64) -> UInt64 { sendBuffers[id]?.buffered ?? 0 }

    /// The consumer took `count` bytes of a stream: give the peer that much more credit.
    public func consumed(stream id: Int64, count: Int) {
        guard let handle, !closedReported, count > 0 else { return }
        _ = cngtcp2_extend(handle, id, UInt64(count))
    }

    /// Closes the connection with an application error code (0: no error).
    public func close(code: UInt64 = 0) {
        guard let handle, !closedReported else { return }
        cngtcp2_set_app_error(handle, code)
        pendingClose = true
    }

    private var pendingClose = false

    // MARK: Output

    /// Writes every packet ngtcp2 has ready (stream data round-robin, then acks and control).
    /// `segments` > 1 gathers up to that many packets to one destination into one `Datagram`
    /// with a `segmentSize` (for UDP GSO); 1 returns one `Datagram` per packet.
    public func flush(now: UInt64 = cngtcp2_now(), limit: Int = 256, segments: Int = 1) -> [Datagram] {
        guard let handle else { return [] }
        runLimit = max(1, segments)
        defer { run = nil }
        var datagrams = queuedOnFailure
        queuedOnFailure.removeAll()
        if pendingClose && !closedReported {
            pendingClose = false
            if let d = writeClose(handle, now: now) { datagrams.append(d) }
            report(closed: nil)
        }
        if closedReported { return datagrams }
        // Paced: at most one send quantum now; the rest when the timer (cngtcp2_expiry) says so.
        let quantum = max(Int(CNGTCP2_MAX_UDP_PAYLOAD), cngtcp2_send_quantum(handle))
        var budget = min(limit, max(1, quantum / Int(CNGTCP2_MAX_UDP_PAYLOAD)))
        var progress = true
        let ids = sendBuffers.count == 1 ? Array(sendBuffers.keys) : sendBuffers.keys.sorted()
        while budget > 0 && progress {
            progress = false
            for id in ids where sendBuffers[id]?.hasUnsent == true && !blocked.contains(id) {
                guard budget > 0, let buffer = sendBuffers[id] else { break }
                let data = buffer.unsent()
                let fin =
                    buffer.finQueued && !buffer.finSent && buffer.sentOffset + UInt64(data.count) == buffer.endOffset
                var consumed = -1
                let n = writePacket(
                    handle,
                    stream: id,
                    data: data,
                    fin: fin,
                    consumed: &consumed,
                    now: now,
                    into: &datagrams
                )
                if n < 0 {
                    if n == Int(CNGTCP2_ERR_STREAM_DATA_BLOCKED) {
                        blocked.insert(id)
                        continue
                    }
                    if n == Int(CNGTCP2_ERR_STREAM_SHUT_WR) || n == Int(CNGTCP2_ERR_STREAM_NOT_FOUND) {
                        sendBuffers[id]?.release()
                        sendBuffers[id] = nil
                        continue
                    }
                    fail(Int32(n))
                    endRun(into: &datagrams)
                    return datagrams
                }
                if consumed >= 0 {
                    sendBuffers[id]?.markSent(consumed)
                    if fin && consumed == data.count { sendBuffers[id]?.finSent = true }
                }
                if n == 0 {
                    budget = 0
                    break
                }  // congestion window or pacing: wait for acks / the timer
                budget -= 1
                progress = true
            }
        }
        // Acknowledgements and control frames.
        while budget > 0 {
            var consumed = -1
            let n = writePacket(
                handle,
                stream: -1,
                data: UnsafeRawBufferPointer(start: nil, count: 0),
                fin: false,
                consumed: &consumed,
                now: now,
                into: &datagrams
            )
            if n < 0 {
                fail(Int32(n))
                break
            }
            if n == 0 { break }
            budget -= 1
        }
        // Pacing applies to bulk sends only (a flush that used its whole quantum): paced after
        // every flush, the first flights after the handshake waited 5-15 ms for their pacing
        // slot on loopback, which made connect+exec slower than over TCP.
        if budget == 0 { cngtcp2_update_tx_time(handle, now) }
        endRun(into: &datagrams)
        datagrams += queuedOnFailure
        queuedOnFailure.removeAll()
        return datagrams
    }

    /// Adds a packet (in `out[0..<n]`) to the current run, or ends the run and starts another.
    private func gather(_ n: Int, to destination: SocketAddress, into datagrams: inout [Datagram]) {
        if var r = run {
            run = nil  // `r` holds the only reference: appending does not copy the buffer
            let most = min(runLimit, 65_000 / max(1, r.size))  // one send carries at most 64 KiB
            if !r.short && n <= r.size && r.count < most && r.destination == destination {
                _ = out.withUnsafeBytes { r.bytes.writeBytes(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                r.count += 1
                r.short = n < r.size
                run = r
                return
            }
            datagrams.append(Datagram(bytes: r.bytes, destination: r.destination, segmentSize: r.count > 1 ? r.size : nil))
        }
        var b = allocator.buffer(capacity: runLimit > 1 ? min(65_000, n * runLimit) : n)
        _ = out.withUnsafeBytes { b.writeBytes(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        run = Run(bytes: b, destination: destination, size: n)
    }

    private func endRun(into datagrams: inout [Datagram]) {
        guard let r = run else { return }
        run = nil
        datagrams.append(Datagram(bytes: r.bytes, destination: r.destination, segmentSize: r.count > 1 ? r.size : nil))
    }

    private func writePacket(
        _ handle: OpaquePointer,
        stream: Int64,
        data: UnsafeRawBufferPointer,
        fin: Bool,
        consumed: inout Int,
        now: UInt64,
        into datagrams: inout [Datagram]
    ) -> Int {
        var dest = sockaddr_storage()
        var destLen = socklen_t(0)
        let n = out.withUnsafeMutableBufferPointer { o in
            cngtcp2_write(
                handle,
                o.baseAddress,
                o.count,
                stream,
                data.baseAddress?.assumingMemoryBound(to: UInt8.self),
                data.count,
                fin ? 1 : 0,
                &consumed,
                &dest,
                &destLen,
                now
            )
        }
        if n > 0, let address = address(of: dest, length: destLen) {
            gather(n, to: address, into: &datagrams)
        }
        return n
    }

    /// The last packet's destination, as ngtcp2 gave it and as a NIO address: nearly every packet
    /// goes to the same one, and making a `SocketAddress` allocates.
    private var lastDestination: (storage: sockaddr_storage, length: socklen_t, address: SocketAddress)?

    private func address(of storage: sockaddr_storage, length: socklen_t) -> SocketAddress? {
        if let last = lastDestination, last.length == length,
            withUnsafeBytes(of: last.storage, { a in
                withUnsafeBytes(of: storage) { b in
                    guard let a = a.baseAddress, let b = b.baseAddress else { return false }
                    return memcmp(a, b, Int(length)) == 0
                }
            })
        {
            return last.address
        }
        guard Int(length) <= MemoryLayout<sockaddr_storage>.size,
            let address = SocketAddress.from(storage: storage, length: length)
        else { return nil }
        lastDestination = (storage, length, address)
        return address
    }

    private func writeClose(_ handle: OpaquePointer, now: UInt64) -> Datagram? {
        var dest = sockaddr_storage()
        var destLen = socklen_t(0)
        let n = out.withUnsafeMutableBufferPointer { o in
            cngtcp2_write_close(handle, o.baseAddress, o.count, &dest, &destLen, now)
        }
        guard n > 0, let address = SocketAddress.from(storage: dest, length: destLen) else { return nil }
        var b = allocator.buffer(capacity: n)
        b.writeBytes(out[0..<n])
        return Datagram(bytes: b, destination: address)
    }

    // MARK: Failure

    private func fail(_ rv: Int32) {
        guard !closedReported else { return }
        if rv == CNGTCP2_ERR_DRAINING || rv == CNGTCP2_ERR_CLOSING {
            // A stateless reset ends the connection at once (no close is sent back, §8.4).
            report(closed: cngtcp2_stateless_reset_received(handle) != 0 ? .statelessReset : peerError())
            return
        }
        if rv == CNGTCP2_ERR_DROP_CONN || rv == CNGTCP2_ERR_RETRY {
            report(closed: .lib(rv))
            return
        }
        var error: QUICError = .lib(rv)
        if rv == CNGTCP2_ERR_CRYPTO {
            var app: Int32 = 0
            var code: UInt64 = 0
            cngtcp2_peer_close(handle, &app, &code)
            if code == 0x100 + UInt64(CNGTCP2_ALERT_NO_APPLICATION_PROTOCOL) { error = .noApplicationProtocol }
        }
        if let handle, let d = writeClose(handle, now: cngtcp2_now()) { queuedOnFailure.append(d) }
        report(closed: error)
    }

    /// A CONNECTION_CLOSE written when a read failed (the endpoint sends it with the next flush).
    package var queuedOnFailure: [Datagram] = []

    private func peerError() -> QUICError? {
        var app: Int32 = 0
        var code: UInt64 = 0
        cngtcp2_peer_close(handle, &app, &code)
        if app == 0 && code == 0x100 + UInt64(CNGTCP2_ALERT_NO_APPLICATION_PROTOCOL) { return .noApplicationProtocol }
        if app == 0 && code == 0 { return nil }
        return .closedByPeer(application: app != 0, code: code)
    }

    private func report(closed error: QUICError?) {
        guard !closedReported else { return }
        closedReported = true
        for id in sendBuffers.keys { sendBuffers[id]?.release() }
        sendBuffers.removeAll()
        events.append(.closed(error))
    }

    // MARK: Callbacks from ngtcp2 (owner = this object, unretained)

    /// Largest buffer one `.streamData` event gathers from consecutive packets of a stream. With
    /// the stream channel, QNSP and SSH-2 work through each buffer at once: 64 KiB (and what
    /// they make of it) stays in the caches, 256 KiB (the socket pair's figure) made qssh's bulk
    /// rate over QUIC about a tenth lower.
    static let mergeLimit = 64 * 1024

    private static func from(_ owner: UnsafeMutableRawPointer?) -> QUICConnection? {
        owner.map { Unmanaged<QUICConnection>.fromOpaque($0).takeUnretainedValue() }
    }

    private static let callbacks: cngtcp2_callbacks = cngtcp2_callbacks(
        stream_data: { owner, id, fin, data, len in
            guard let c = from(owner) else { return -1 }
            let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : len)
            // Packets of one read burst on the same stream become one buffer (one delivery to the
            // stream's channel instead of one per packet), up to `mergeLimit` bytes.
            if case .streamData(let last, var b, fin: false)? = c.events.last, last == id,
                b.readableBytes + bytes.count <= QUICConnection.mergeLimit
            {
                c.events.removeLast()
                b.writeBytes(bytes)
                c.events.append(.streamData(id, b, fin: fin != 0))
                return 0
            }
            // Exactly the piece: a peer interleaving 1-byte STREAM frames on several streams must
            // not make ~16 KiB allocated per few wire bytes. Merging grows the buffer as needed.
            var b = c.allocator.buffer(capacity: bytes.count)
            b.writeBytes(bytes)
            c.events.append(.streamData(id, b, fin: fin != 0))
            return 0
        },
        stream_acked: { owner, id, offset, len in
            guard let c = from(owner) else { return -1 }
            c.sendBuffers[id]?.acknowledge(upTo: offset + len)
            return 0
        },
        stream_open: { owner, id in
            guard let c = from(owner) else { return -1 }
            if c.sendBuffers[id] == nil { c.sendBuffers[id] = QUICSendBuffer() }
            c.events.append(.streamOpened(id))
            return 0
        },
        stream_close: { owner, id, code in
            guard let c = from(owner) else { return -1 }
            c.sendBuffers[id]?.release()
            c.sendBuffers[id] = nil
            c.blocked.remove(id)
            c.events.append(.streamClosed(id, code: code))
            return 0
        },
        handshake_completed: { owner in
            guard let c = from(owner) else { return -1 }
            var name = [UInt8](repeating: 0, count: 256)
            let n = cngtcp2_alpn(c.handle, &name, name.count)
            let alpn = String(decoding: name[0..<n], as: UTF8.self)
            c.alpn = alpn
            c.events.append(.handshakeCompleted(alpn: alpn))
            return 0
        },
        cid_added: { owner, cid, len in
            guard let c = from(owner), let cid else { return -1 }
            c.cidChanges.append((true, Array(UnsafeBufferPointer(start: cid, count: len))))
            return 0
        },
        cid_removed: { owner, cid, len in
            guard let c = from(owner), let cid else { return -1 }
            c.cidChanges.append((false, Array(UnsafeBufferPointer(start: cid, count: len))))
            return 0
        },
        stream_credit: { owner, id in
            guard let c = from(owner) else { return -1 }
            c.blocked.remove(id)
            return 0
        }
    )
}
