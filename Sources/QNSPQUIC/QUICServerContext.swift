import CNGTCP2
import NIOCore

/// Server-side handling of datagrams that match no connection: Version Negotiation, address
/// validation with Retry tokens, accepting Initials as new connections, and stateless resets for
/// short-header packets of connections this server no longer knows.
final class QUICServerContext {
    enum Decision {
        /// A new connection; `initialDCID` is the client's first DCID (route its retransmissions too).
        case accept(QUICConnection, initialDCID: [UInt8])
        case reply(ByteBuffer)
        case drop
    }

    let credentials: QUICCredentials
    let parameters: QUICConnection.Parameters
    /// When address validation (a Retry round trip) comes before any handshake work.
    let retry: QUICEndpoint.RetryPolicy
    /// With `.underLoad`: how many Initials without a token may start a handshake right away.
    private var unvalidatedBudget: RateBudget?
    var alpns: [String]
    /// Keys Retry tokens and stateless-reset tokens; random per endpoint.
    private let secret: [UInt8]
    private let retryTokenLifetime: UInt64 = 10_000_000_000
    private let allocator = ByteBufferAllocator()
    private var resetBudget = RateBudget(perSecond: 200)
    private var out = [UInt8](repeating: 0, count: 1500)

    init(
        credentials: QUICCredentials,
        alpns: [String],
        retry: QUICEndpoint.RetryPolicy,
        parameters: QUICConnection.Parameters
    ) throws {
        self.credentials = credentials
        self.alpns = alpns
        self.retry = retry
        if case .underLoad(let rate) = retry { unvalidatedBudget = RateBudget(perSecond: Double(max(1, rate))) }
        self.parameters = parameters
        var s = [UInt8](repeating: 0, count: Int(CNGTCP2_SECRETLEN))
        guard cngtcp2_random(&s, s.count) == 0 else { throw QUICError.invalidArgument("no randomness") }
        secret = s
    }

    var alpnWire: [UInt8] {
        var w: [UInt8] = []
        for a in alpns where !a.isEmpty && a.utf8.count <= 255 {
            w.append(UInt8(a.utf8.count))
            w += a.utf8
        }
        return w
    }

    func admit(_ datagram: ByteBuffer, from remote: SocketAddress, local: SocketAddress, now: UInt64) -> Decision {
        let len = datagram.readableBytes
        guard len > 0 else { return .drop }
        return datagram.withUnsafeReadableBytes { raw -> Decision in
            guard let pkt = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return .drop }
            var version: UInt32 = 0
            var dcid = [UInt8](repeating: 0, count: Int(CNGTCP2_MAX_CIDLEN))
            var scid = [UInt8](repeating: 0, count: Int(CNGTCP2_MAX_CIDLEN))
            var dcidLen = 0
            var scidLen = 0
            let rv = cngtcp2_decode_cids(pkt, len, Int(CNGTCP2_SCIDLEN), &version, &dcid, &dcidLen, &scid, &scidLen)
            if rv < 0 { return .drop }
            if rv == 1 {
                // Unsupported version: answer only datagrams large enough to be a client's first flight.
                guard len >= 1200 else { return .drop }
                let n = out.withUnsafeMutableBufferPointer {
                    cngtcp2_write_version_negotiation($0.baseAddress, $0.count, dcid, dcidLen, scid, scidLen)
                }
                return n > 0 ? .reply(bytes(n)) : .drop
            }
            if version == 0 {
                // Short header for a connection we do not have: stateless reset (rate-limited).
                guard resetBudget.take(now: now) else { return .drop }
                let n = out.withUnsafeMutableBufferPointer {
                    cngtcp2_write_stateless_reset($0.baseAddress, $0.count, secret, dcid, dcidLen, len)
                }
                return n > 0 ? .reply(bytes(n)) : .drop
            }
            var initial = cngtcp2_initial()
            guard cngtcp2_accept(pkt, len, &initial) == 0 else { return .drop }
            var odcid: [UInt8]?
            if cngtcp2_has_retry_token(&initial) != 0 {
                var o = [UInt8](repeating: 0, count: Int(CNGTCP2_MAX_CIDLEN))
                var oLen = 0
                let ok = remote.withSockAddr { rp, rl in
                    cngtcp2_verify_retry_token(&initial, secret, rp, socklen_t(rl), retryTokenLifetime, now, &o, &oLen)
                }
                guard ok == 0 else { return .drop }  // forged, expired or from another address
                odcid = Array(o[0..<oLen])
            } else if mustRetry(now: now) {
                let n = out.withUnsafeMutableBufferPointer { o in
                    remote.withSockAddr { rp, rl in
                        cngtcp2_write_retry(o.baseAddress, o.count, &initial, secret, rp, socklen_t(rl), now)
                    }
                }
                return n > 0 ? .reply(bytes(n)) : .drop
            }
            let initialDCID = withUnsafeBytes(of: initial.dcid) { Array($0.prefix(initial.dcidlen)) }
            do {
                let conn = try QUICConnection(
                    serverFor: &initial,
                    originalDCID: odcid,
                    remote: remote,
                    localAddress: local,
                    alpnWire: alpnWire,
                    secret: secret,
                    credentials: credentials,
                    parameters: parameters
                )
                return .accept(conn, initialDCID: initialDCID)
            } catch {
                return .drop
            }
        }
    }

    /// Whether an Initial without a token gets a Retry: always, never, or once more of them come
    /// than the policy's rate (the budget is spent only by Initials that start a handshake).
    private func mustRetry(now: UInt64) -> Bool {
        switch retry {
        case .always: return true
        case .never: return false
        case .underLoad: return !(unvalidatedBudget?.take(now: now) ?? false)
        }
    }

    private func bytes(_ n: Int) -> ByteBuffer {
        var b = allocator.buffer(capacity: n)
        b.writeBytes(out[0..<n])
        return b
    }
}
