import QNSPCrypto

/// A sans-I/O QNSP connection, client or server: feed it the bytes that arrive,
/// send the bytes it produces. It never touches a socket, a clock or a thread.
///
/// Driving rules:
/// - after *every* call (including one that throws), send `takeOutbound()` before
///   anything else: it may hold handshake records, a reject, or control cells that
///   must precede later data cells;
/// - any thrown `QNSPError` means the connection is closed; close the transport.
public final class QNSPConnection {
    /// Parameters of the client role.
    public struct ClientParameters: Sendable {
        public var username: String
        /// Makes the ClientAuth signature: a ``UserKeyPair`` or an agent.
        public var signer: any UserAuthSigner
        /// A certificate for the signer's key, presented in ClientAuth instead of the bare key (§7.7).
        public var certificate: QNSPCertificate?
        /// The pinned host key; nil starts with a first-contact exchange.
        public var pinnedHostKey: HostPublicKey?
        /// Decides on an announced host key at first contact (trust on first use).
        public var verifyHostKey: @Sendable (HostPublicKey) -> Bool
        /// First contact under a certificate authority (known_hosts `@cert-authority`): asks the
        /// server for its host certificate and decides on the announced key and the certificate
        /// (nil when the server sent none) instead of `verifyHostKey` (docs/protocol.md §7.11).
        /// The connection has checked that the certificate is a host certificate of that key.
        public var verifyHostCertificate: (@Sendable (HostPublicKey, QNSPCertificate?) -> Bool)?
        /// Unix time in seconds, sent in the hello (the server's replay window checks it).
        public var clock: @Sendable () -> UInt64 = QNSPHandshakeGuard.wallClock

        public init(username: String, user: UserKeyPair, pinnedHostKey: HostPublicKey?,
                    verifyHostKey: @escaping @Sendable (HostPublicKey) -> Bool = { _ in false }) {
            self.init(username: username, signer: user, pinnedHostKey: pinnedHostKey, verifyHostKey: verifyHostKey)
        }

        public init(username: String, signer: any UserAuthSigner, pinnedHostKey: HostPublicKey?,
                    verifyHostKey: @escaping @Sendable (HostPublicKey) -> Bool = { _ in false }) {
            self.username = username
            self.signer = signer
            self.pinnedHostKey = pinnedHostKey
            self.verifyHostKey = verifyHostKey
        }
    }

    /// The answer of the server's user authorization policy.
    public enum AuthorizationDecision: Sendable, Equatable {
        case accept
        /// The reason is for the server's log; the client is only told ``genericRefusal``.
        case reject(String)
    }

    /// Parameters of the server role. Copies share the handshake guard and the signed host key
    /// announcement, so one value can serve every connection (set `peerAddress` per connection).
    public struct ServerParameters: Sendable {
        public var hostKeys: [HostKeyPair] {
            didSet { announcement = AnnouncementCache(hostKeys.first, certificate: hostCertificate) }
        }
        /// The primary host key's certificate, sent in the announcement to a first-contact
        /// request padded for it (docs/protocol.md §7.11). Its subject must be that key.
        public var hostCertificate: QNSPCertificate? {
            didSet { announcement = AnnouncementCache(hostKeys.first, certificate: hostCertificate) }
        }
        /// Decides whether a key whose signature verified may log in as a user. The connection
        /// does not call it: its driver does, when the `.authorizationRequired` event comes, and
        /// may run it on another thread (it may block on the password database or files).
        public var authorize: @Sendable (String, UserPublicKey) -> AuthorizationDecision
        /// The policy for a client that presented a certificate (its signature by the key has
        /// verified; the certificate itself has not been checked). Nil refuses certificates.
        public var authorizeCertificate: (@Sendable (String, UserPublicKey, QNSPCertificate) -> AuthorizationDecision)?
        /// Replay filter, cookies and rate limits, shared by all connections of a server.
        public var handshakeGuard: QNSPHandshakeGuard
        /// The client's address as bytes (cookies and per-source limits are bound to it).
        public var peerAddress: [UInt8] = []
        private var announcement: AnnouncementCache

        public init(
            hostKeys: [HostKeyPair], handshakeGuard: QNSPHandshakeGuard = QNSPHandshakeGuard(),
            authorize: @escaping @Sendable (String, UserPublicKey) -> AuthorizationDecision
        ) {
            self.hostKeys = hostKeys
            self.authorize = authorize
            self.handshakeGuard = handshakeGuard
            self.announcement = AnnouncementCache(hostKeys.first, certificate: nil)
        }

        /// The HostKeyAnnouncement body of the primary host key, signed once and then reused;
        /// with the host certificate when `certificate` and the server has one.
        func announcementBody(certificate: Bool) -> [UInt8]? { announcement.body(certificate: certificate) }
        /// The size of the announcement record with the certificate, if the server has one.
        func certificateAnnouncementRecordSize(cellSize: Int) -> Int? {
            announcement.certificateBodySize.map { ClearRecord.paddedSize(bodyLength: $0, cellSize: cellSize) }
        }
    }

    enum Role {
        case client(ClientParameters)
        case server(ServerParameters)
    }

    enum Phase {
        case clientIdle
        case clientAwaitingAnnouncement
        case clientAwaitingServerHello(ClientHelloState)
        case clientAwaitingAuthResult(serverApplication: TrafficSecret, info: QNSPSessionInfo)
        case serverAwaitingHello(announced: Bool, retried: Bool)
        case serverAwaitingClientAuth(schedule: KeySchedule, serverHelloHash: [UInt8], info: QNSPSessionInfo)
        /// Input after the ClientAuth waits in `pending` until `completeAuthorization`.
        case serverAwaitingAuthorization(PendingAuthorization)
        case established
        case closed
    }

    public let configuration: QNSPConfiguration
    let role: Role
    var phase: Phase {
        didSet {
            switch phase {
            case .established: phaseFlag = .established
            case .closed: phaseFlag = .closed
            case .serverAwaitingAuthorization: phaseFlag = .authorizing
            default: phaseFlag = .handshaking
            }
        }
    }
    /// `phase` without its payloads, for the per-cell path (reading `phase` copies and retains them).
    private(set) var phaseFlag: PhaseFlag = .handshaking
    enum PhaseFlag {
        case handshaking
        /// A server waiting for its authorization policy (input is held).
        case authorizing
        case established
        case closed
    }
    var cellSize: Int
    var transcript: [UInt8] = []
    var pending: [UInt8] = []
    var handshakeBuffer: [UInt8] = []
    var outbound: [UInt8] = []
    var sealer: CellSealer?
    var opener: CellOpener?
    var firstContact = false
    var firstContactNonce: [UInt8] = []
    /// Whether we sent / received an end-of-stream cell.
    public private(set) var sentEndOfStream = false
    public private(set) var receivedEndOfStream = false
    public internal(set) var sessionInfo: QNSPSessionInfo?

    public init(client: ClientParameters, configuration: QNSPConfiguration = QNSPConfiguration()) {
        self.configuration = configuration
        self.role = .client(client)
        self.phase = .clientIdle
        self.cellSize = configuration.cellSize
    }

    public init(server: ServerParameters, configuration: QNSPConfiguration = QNSPConfiguration()) {
        self.configuration = configuration
        self.role = .server(server)
        self.phase = .serverAwaitingHello(announced: false, retried: false)
        self.cellSize = configuration.cellSize
    }

    // MARK: State

    public var isEstablished: Bool { phaseFlag == .established }
    /// The server's authorization policy (nil for a client), for the driver to run.
    public var authorizationPolicy: (@Sendable (String, UserPublicKey) -> AuthorizationDecision)? {
        guard case .server(let p) = role else { return nil }
        if case .serverAwaitingAuthorization(let pending) = phase, let certificate = pending.certificate {
            guard let policy = p.authorizeCertificate else { return { _, _ in .reject("certificates are not accepted") } }
            return { user, key in policy(user, key, certificate) }
        }
        return p.authorize
    }
    public var isClosed: Bool { phaseFlag == .closed }
    /// Largest application payload in one cell.
    public var maxPayloadPerCell: Int { CellLayout.maxPayload(cellSize: cellSize) }
    public var currentCellSize: Int { cellSize }
    public var sendingEpoch: UInt64 { sealer?.secret.epoch ?? 0 }
    public var receivingEpoch: UInt64 { opener?.secret.epoch ?? 0 }

    /// Bytes waiting to be sent (handshake records and control cells), in order.
    public func takeOutbound() -> [UInt8] {
        defer { outbound.removeAll(keepingCapacity: true) }
        return outbound
    }

    public var hasOutbound: Bool { !outbound.isEmpty }

    // MARK: Starting

    /// Client only: queues the first handshake record.
    public func start() throws(QNSPError) {
        guard case .client(let params) = role, case .clientIdle = phase else { throw .unexpectedMessage("start() on a started connection") }
        try failClosed { () throws(QNSPError) in
            guard QNSPConfiguration.validate(cellSize: cellSize) else { throw .unsupportedCellSize(cellSize) }
            if let host = params.pinnedHostKey {
                try sendClientHello(params: params, hostKey: host)
            } else {
                firstContact = true
                do { firstContactNonce = try SecureRandom().bytes(32) } catch { throw .keyMaterial("\(error)") }
                let req = HandshakeMessages.HostKeyRequest.padded(
                    nonce: firstContactNonce, versions: QNSPConfiguration.supportedVersions, cellSize: cellSize,
                    certificate: params.verifyHostCertificate != nil)
                sendClear(.hostKeyRequest, body: req.encoded())
                phase = .clientAwaitingAnnouncement
            }
        }
    }

    // MARK: Receiving

    /// Processes bytes from the peer. Application bytes go to `deliver` (the pointer is
    /// valid only during the call); other happenings are returned as events.
    @discardableResult
    public func receive(_ bytes: UnsafeRawBufferPointer, deliver: (UnsafeRawBufferPointer) -> Void) throws(QNSPError) -> [QNSPEvent] {
        if case .closed = phase { throw .connectionClosed }
        var events: [QNSPEvent] = []
        try failClosed { () throws(QNSPError) in try receiveLoop(bytes, deliver: deliver, events: &events) }
        return events
    }

    /// Array convenience: returns the delivered application bytes with the events.
    public func receive(_ bytes: [UInt8]) throws(QNSPError) -> (data: [UInt8], events: [QNSPEvent]) {
        var data: [UInt8] = []
        var events: [QNSPEvent] = []
        do {
            events = try bytes.withUnsafeBytes { raw in try receive(raw) { data.append(contentsOf: $0) } }
        } catch let e as QNSPError { throw e } catch { throw .connectionClosed }
        return (data, events)
    }

    /// The transport reached end of file. Throws if that cut a handshake or a cell short.
    public func receiveEOF() throws(QNSPError) {
        switch phase {
        case .closed: return
        case .established:
            phase = .closed
            if !pending.isEmpty { throw .truncatedInput("a cell (\(pending.count) of \(cellSize) bytes)") }
            throw .truncatedInput("the session: the peer disconnected without a close message")
        default:
            phase = .closed
            throw .truncatedInput("the handshake")
        }
    }

    // MARK: Sending

    /// Upper bound of the bytes `sealData` writes for `count` application bytes.
    public func maxSealedSize(forDataCount count: Int) -> Int {
        let cells = (count + maxPayloadPerCell - 1) / maxPayloadPerCell
        let updates = 1 + count / Int(max(1, min(configuration.rekeyAfterBytes, UInt64(Int.max))))
        return (cells + updates) * cellSize
    }

    /// Seals application bytes into whole cells in `out`; returns the bytes written.
    /// Inserts a key update cell whenever the byte limit is reached.
    public func sealData(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) throws(QNSPError) -> Int {
        guard case .established = phase, let sealer, !sentEndOfStream else { throw .connectionClosed }
        var written = 0
        var offset = 0
        let n = cellSize
        try failClosed { () throws(QNSPError) in
            while offset < data.count {
                if sealer.bytesUnderCurrentKey >= configuration.rekeyAfterBytes || sealer.sequence >= CellSealer.maxCellsPerKey - 1 {
                    try sealKeyUpdate(requestPeer: false, into: UnsafeMutableRawBufferPointer(rebasing: out[written..<(written + n)]))
                    written += n
                }
                let chunk = min(maxPayloadPerCell, data.count - offset)
                try sealer.seal(type: .data, payload: UnsafeRawBufferPointer(rebasing: data[offset..<(offset + chunk)]),
                                into: UnsafeMutableRawBufferPointer(rebasing: out[written..<(written + n)]))
                written += n
                offset += chunk
            }
        }
        return written
    }

    /// Array convenience for `sealData`.
    public func sealData(_ data: [UInt8]) throws(QNSPError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: maxSealedSize(forDataCount: data.count))
        let n: Int
        do {
            n = try data.withUnsafeBytes { d in try out.withUnsafeMutableBytes { o in try sealData(d, into: o) } }
        } catch let e as QNSPError { throw e } catch { throw .connectionClosed }
        out.removeSubrange(n...)
        return out
    }

    /// Queues a key update: the next cells use the next sending key. With `requestPeer`, asks the peer to update too.
    public func updateSendingKey(requestPeer: Bool = false) throws(QNSPError) {
        guard case .established = phase else { throw .connectionClosed }
        var cell = [UInt8](repeating: 0, count: cellSize)
        try failClosed { () throws(QNSPError) in
            try QNSPError.typed { try cell.withUnsafeMutableBytes { o in try sealKeyUpdate(requestPeer: requestPeer, into: o) } }
        }
        outbound += cell
    }

    /// Queues a keepalive ping (payload at most 64 bytes).
    public func ping(_ payload: [UInt8] = []) throws(QNSPError) {
        guard case .established = phase else { throw .connectionClosed }
        try queueCell(.ping, Array(payload.prefix(64)))
    }

    /// Queues `count` cover-traffic cells, indistinguishable from data cells on the wire.
    public func sendPadding(cells count: Int = 1) throws(QNSPError) {
        guard case .established = phase else { throw .connectionClosed }
        for _ in 0..<count { try queueCell(.padding, []) }
    }

    /// Queues an end-of-stream cell: no more data will be sent (the peer sees a half-close).
    public func sendEndOfStream() throws(QNSPError) {
        guard case .established = phase, !sentEndOfStream else { return }
        try queueCell(.endOfStream, [])
        sentEndOfStream = true
    }

    /// Queues an orderly close and closes the connection.
    public func close(code: QNSPCloseCode = .normal, reason: String = "") {
        if sealer != nil, !isClosed {
            var w = ByteWriter()
            w.write(code.rawValue)
            w.write(bytes: Array(reason.utf8.prefix(maxPayloadPerCell - 1)))
            try? queueCell(.close, w.bytes)
        }
        phase = .closed
    }

    // MARK: Internals shared by both roles

    func failClosed(_ body: () throws(QNSPError) -> Void) throws(QNSPError) {
        do { try body() } catch {
            phase = .closed
            throw error
        }
    }

    func queueCell(_ type: CellType, _ payload: [UInt8]) throws(QNSPError) {
        guard let sealer else { throw .connectionClosed }
        outbound += try sealer.seal(type: type, payload: payload)
    }

    func sealKeyUpdate(requestPeer: Bool, into out: UnsafeMutableRawBufferPointer) throws(QNSPError) {
        guard let sealer else { throw .connectionClosed }
        let flag: [UInt8] = [requestPeer ? 1 : 0]
        try QNSPError.typed { try flag.withUnsafeBytes { f in try sealer.seal(type: .keyUpdate, payload: f, into: out) } }
        try sealer.updateKey()
    }

    /// Queues a clear record; every type but Retry (which both sides leave out) joins the transcript.
    func sendClear(_ type: ClearRecord.MessageType, body: [UInt8]) {
        let record = ClearRecord(version: QNSPConfiguration.supportedVersions.max() ?? 1, type: type, cellSize: cellSize, body: body).encoded()
        if type != .retry { transcript += record }
        outbound += record
    }

    /// Sends an encrypted handshake message (`type | u24 length | body`) in `.handshake` cells.
    func sendEncryptedHandshake(_ type: HandshakeMessages.EncryptedType, body: [UInt8]) throws(QNSPError) -> [UInt8] {
        var w = ByteWriter(capacity: body.count + 4)
        w.write(type.rawValue)
        w.writeUInt24(body.count)
        w.write(bytes: body)
        let message = w.bytes
        var offset = 0
        while offset < message.count {
            let chunk = min(maxPayloadPerCell, message.count - offset)
            try queueCell(.handshake, Array(message[offset..<(offset + chunk)]))
            offset += chunk
        }
        return message
    }

    /// Most bytes held while the driver decides on an authorization (the client sends nothing
    /// but its ClientAuth before the result, so this is only reached by a misbehaving peer).
    static let maxHeldInput = 65536

    /// Whether input is being held (a server waiting for its authorization policy).
    public var isAwaitingAuthorization: Bool { phaseFlag == .authorizing }

    /// Processes the bytes held during an authorization.
    func resumeHeldInput(deliver: (UnsafeRawBufferPointer) -> Void, events: inout [QNSPEvent]) throws(QNSPError) {
        try receiveLoop(UnsafeRawBufferPointer(start: nil, count: 0), deliver: deliver, events: &events)
    }

    private func receiveLoop(_ input: UnsafeRawBufferPointer, deliver: (UnsafeRawBufferPointer) -> Void, events: inout [QNSPEvent]) throws(QNSPError) {
        if isAwaitingAuthorization {
            guard pending.count + input.count <= Self.maxHeldInput else {
                throw .unexpectedMessage("\(pending.count + input.count) bytes sent before the authentication result")
            }
            pending.append(contentsOf: input)
            return
        }
        var index = 0
        // Clear handshake records until the receive direction becomes encrypted.
        while opener == nil {
            if index < input.count {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[index...]))
                index = input.count
            }
            let expected: Int? = {
                if case .serverAwaitingHello(announced: false, retried: false) = phase { return nil }
                return cellSize
            }()
            guard let (record, raw) = try ClearRecord.parse(pending[...], expectedCellSize: expected, maxBodySize: configuration.maxHandshakeMessageSize) else {
                return
            }
            let rawBytes = Array(raw)
            pending.removeFirst(rawBytes.count)
            try handleClearRecord(record, raw: rawBytes, events: &events)
            if case .closed = phase { return }
        }
        let n = cellSize
        // Cells left over in `pending` (after the last clear record or from a previous call).
        if !pending.isEmpty {
            let missing = (n - pending.count % n) % n
            let take = min(missing, input.count - index)
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[index..<(index + take)]))
            index += take
            let whole = pending.count / n * n
            if whole > 0 {
                let cells = Array(pending[0..<whole])
                pending.removeFirst(whole)
                var held: [UInt8] = []
                var current = try currentOpener()
                try QNSPError.typed {
                    try cells.withUnsafeBytes { c in
                        var o = 0
                        while o < whole {
                            let data = try processCell(
                                UnsafeRawBufferPointer(rebasing: c[o..<(o + n)]), opener: current, deliver: deliver, events: &events)
                            if !data { current = try currentOpener() }
                            o += n
                            if phaseFlag == .closed { return }
                            if isAwaitingAuthorization {
                                held = Array(c[o..<whole])
                                return
                            }
                        }
                    }
                }
                if phaseFlag == .closed { return }
                if isAwaitingAuthorization {
                    pending = held + pending + Array(UnsafeRawBufferPointer(rebasing: input[index...]))
                    return
                }
            }
            if !pending.isEmpty { return }
        }
        guard input.count - index >= n else {
            if index < input.count { pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[index...])) }
            return
        }
        var current = try currentOpener()
        while input.count - index >= n {
            let data = try processCell(
                UnsafeRawBufferPointer(rebasing: input[index..<(index + n)]), opener: current, deliver: deliver, events: &events)
            index += n
            if !data { current = try currentOpener() }
            if phaseFlag == .closed { return }
            if isAwaitingAuthorization { break }
        }
        if index < input.count { pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[index...])) }
    }

    /// The opener for the next cells (held by the receive loops for a run of data cells: one
    /// reference count operation per batch instead of per cell; control cells can replace it).
    private func currentOpener() throws(QNSPError) -> CellOpener {
        guard let opener else { throw .unexpectedMessage("cell before keys") }
        return opener
    }

    /// Opens one cell with `opener` (the connection's current one); returns true for a data cell
    /// (which cannot change the keys), false for a control cell (after which the caller looks the
    /// opener up again).
    private func processCell(
        _ cell: UnsafeRawBufferPointer, opener: CellOpener, deliver: (UnsafeRawBufferPointer) -> Void, events: inout [QNSPEvent]
    ) throws(QNSPError) -> Bool {
        var control: (UInt8, [UInt8])?
        try opener.open(cell: cell) { (type: UInt8, payload: UnsafeRawBufferPointer) throws(QNSPError) in
            if type == CellType.data.rawValue {
                guard phaseFlag == .established else { throw .unexpectedMessage("data cell before the handshake completed") }
                guard !receivedEndOfStream else { throw .unexpectedMessage("data cell after end of stream") }
                if payload.count > 0 { deliver(payload) }
            } else {
                control = (type, Array(payload))
            }
        }
        guard let (typeByte, payload) = control else { return true }
        guard let type = CellType(rawValue: typeByte) else { throw .unknownCellType(typeByte) }
        switch type {
        case .data: break
        case .padding: break
        case .handshake:
            if case .established = phase { throw .unexpectedMessage("handshake cell after the handshake") }
            handshakeBuffer += payload
            try drainEncryptedHandshake(events: &events)
        case .keyUpdate:
            guard payload.count == 1, payload[0] <= 1 else { throw .unexpectedMessage("malformed key update") }
            guard case .established = phase else { throw .unexpectedMessage("key update during the handshake") }
            try opener.updateKey()
            events.append(.peerKeyUpdated(epoch: opener.secret.epoch))
            if payload[0] == 1 { try updateSendingKey(requestPeer: false) }
        case .close:
            let code = payload.first ?? 0
            let reason = PrintableText.escaped(utf8: payload.dropFirst())
            phase = .closed
            events.append(.closed(code: code, reason: reason))
        case .ping:
            guard case .established = phase else { throw .unexpectedMessage("ping during the handshake") }
            try queueCell(.pong, payload)
        case .pong:
            events.append(.pong(payload))
        case .endOfStream:
            guard case .established = phase, !receivedEndOfStream else { throw .unexpectedMessage("end of stream out of place") }
            receivedEndOfStream = true
            events.append(.endOfStream)
        }
        return false
    }

    private func drainEncryptedHandshake(events: inout [QNSPEvent]) throws(QNSPError) {
        while handshakeBuffer.count >= 4 {
            let length = Int(handshakeBuffer[1]) << 16 | Int(handshakeBuffer[2]) << 8 | Int(handshakeBuffer[3])
            guard length <= configuration.maxHandshakeMessageSize else { throw .handshakeMessageTooLarge(length) }
            guard handshakeBuffer.count >= 4 + length else { return }
            let message = Array(handshakeBuffer[0..<(4 + length)])
            handshakeBuffer.removeFirst(4 + length)
            guard let type = HandshakeMessages.EncryptedType(rawValue: message[0]) else {
                throw .unexpectedMessage("encrypted handshake type \(message[0])")
            }
            try handleEncryptedHandshake(type, body: Array(message[4...]), raw: message, events: &events)
        }
    }

    func handleClearRecord(_ record: ClearRecord, raw: [UInt8], events: inout [QNSPEvent]) throws(QNSPError) {
        switch role {
        case .client(let p): try clientHandleClearRecord(record, raw: raw, params: p, events: &events)
        case .server(let p): try serverHandleClearRecord(record, raw: raw, params: p, events: &events)
        }
    }

    func handleEncryptedHandshake(_ type: HandshakeMessages.EncryptedType, body: [UInt8], raw: [UInt8], events: inout [QNSPEvent]) throws(QNSPError) {
        switch role {
        case .client: try clientHandleEncryptedHandshake(type, body: body, events: &events)
        case .server(let p): try serverHandleEncryptedHandshake(type, body: body, raw: raw, params: p, events: &events)
        }
    }

    static func wrap<T>(_ body: () throws(QNSPCryptoError) -> T) throws(QNSPError) -> T {
        do { return try body() } catch { throw .keyMaterial(error.description) }
    }
}

extension QNSPConnection {
    /// For fuzzing and tests: a server connection already established, whose peer seals with
    /// `receive` (its own sending secret is fixed too).
    package static func established(server host: HostKeyPair, receive: TrafficSecret) throws(QNSPError) -> QNSPConnection {
        let c = QNSPConnection(server: .init(hostKeys: [host]) { _, _ in .accept })
        c.opener = try CellOpener(algorithm: .aes256GCM, secret: receive, cellSize: c.cellSize)
        c.sealer = try CellSealer(algorithm: .aes256GCM, secret: TrafficSecret(secret: SecretBytes(copying: [UInt8](repeating: 8, count: 32))),
                                  cellSize: c.cellSize)
        c.phase = .established
        return c
    }
}

/// The primary host key's announcement, signed on first use and shared by every copy of the
/// server parameters (an ML-DSA signature per first-contact request would let anyone make the
/// server sign for them).
final class AnnouncementCache: Sendable {
    private let hostKey: HostKeyPair?
    private let certificate: [UInt8]?
    private let cached = LockedState<(blob: [UInt8], signature: [UInt8])?>(nil)

    init(_ hostKey: HostKeyPair?, certificate: QNSPCertificate?) {
        self.hostKey = hostKey
        self.certificate = certificate?.blob
    }

    /// The body size of the announcement with the certificate, if there is one.
    var certificateBodySize: Int? {
        certificate.map { 2 + HostPublicKey.blobSize + 2 + SignatureScheme.signatureSize + 2 + $0.count }
    }

    func body(certificate withCertificate: Bool) -> [UInt8]? {
        let signed: (blob: [UInt8], signature: [UInt8])? = cached.withLock { signed in
            if let signed { return signed }
            guard let hostKey else { return nil }
            let blob = hostKey.publicKey.blob
            let message = HandshakeMessages.HostKeyAnnouncement.signedMessage(blob: blob)
            guard let signature = try? hostKey.signingKey.sign(message, context: KeySchedule.hostAnnouncementContext) else { return nil }
            signed = (blob, signature)
            return signed
        }
        guard let signed else { return nil }
        return HandshakeMessages.HostKeyAnnouncement(
            hostKeyBlob: signed.blob, signature: signed.signature, certificate: withCertificate ? certificate : nil
        ).encoded()
    }
}
