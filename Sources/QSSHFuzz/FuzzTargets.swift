import Foundation
import NIOCore
import NIOSSH
import QNSP
import QNSPCrypto
import QSFTP
import QSSHAgent
import QSSHSession
import QSSHTools

/// Every parser a peer or a file reaches, as a function of raw bytes, for libFuzzer
/// (`scripts/fuzz.sh`) and for the regression test that replays the saved corpus
/// (`Tests/FuzzCorpus/<target>/`). A target may throw nothing and must never trap: a
/// crash or a sanitizer report is a finding.
package enum FuzzTargets {
    package typealias Target = @Sendable ([UInt8]) -> Void

    package static let all: [(name: String, run: Target)] = [
        ("qnsp-server", qnspServer),
        ("qnsp-client", qnspClient),
        ("qnsp-cells", qnspCells),
        ("handshake-messages", handshakeMessages),
        ("inner-ssh", innerSSH),
        ("sftp", sftp),
        ("socks", socks),
        ("config", config),
        ("known-hosts", knownHosts),
        ("authorized-keys", authorizedKeys),
        ("key-files", keyFiles),
        ("audit-log", auditLog),
        ("agent", agent),
        ("stealth-server", stealthServer),
        ("stealth-line", stealthLine),
    ]

    package static func target(named name: String) -> Target? { all.first { $0.name == name }?.run }

    // MARK: Keys made once (generation is slow)

    static let host: HostKeyPair = {
        do {
            return HostKeyPair(
                kemKey: try HybridKEM.PrivateKey(seed: [UInt8](repeating: 1, count: 32)),
                signingKey: try SignatureScheme.PrivateKey(seed: [UInt8](repeating: 2, count: 32)),
                comment: "fuzz"
            )
        } catch {
            preconditionFailure("fuzz host key: \(error)")
        }
    }()
    static let user: UserKeyPair = {
        do {
            return UserKeyPair(
                signingKey: try SignatureScheme.PrivateKey(seed: [UInt8](repeating: 3, count: 32)),
                comment: "fuzz"
            )
        } catch {
            preconditionFailure("fuzz user key: \(error)")
        }
    }()
    /// One guard for the whole run, with no rate limit (the fuzzer is one source).
    static let handshakeGuard: QNSPHandshakeGuard = {
        var policy = QNSPHandshakeGuard.Policy()
        policy.perSourcePerSecond = 0
        policy.cookies = .never
        return QNSPHandshakeGuard(policy: policy)
    }()

    /// Splits the input into chunks at 0xFF 0xFE markers (several reads of one connection).
    static func chunks(_ data: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var current: [UInt8] = []
        var i = 0
        while i < data.count {
            if i + 1 < data.count && data[i] == 0xFF && data[i + 1] == 0xFE {
                out.append(current)
                current = []
                i += 2
                continue
            }
            current.append(data[i])
            i += 1
        }
        out.append(current)
        return out
    }

    // MARK: QNSP

    /// A server fed arbitrary bytes (clear records, handshake cells), then EOF.
    static let qnspServer: Target = { data in
        let server = QNSPConnection(server: .init(hostKeys: [host], handshakeGuard: handshakeGuard) { _, _ in .accept })
        for chunk in chunks(data) {
            guard let (_, events) = try? server.receive(chunk) else { break }
            if case .authorizationRequired? = events.last { _ = try? server.completeAuthorization(.accept) }
            _ = server.takeOutbound()
        }
        _ = try? server.receiveEOF()
    }

    /// A client (first contact, then known host) fed arbitrary server answers.
    static let qnspClient: Target = { data in
        let pinned = data.first.map { $0 & 1 == 1 } ?? false
        let client = QNSPConnection(
            client: .init(username: "fuzz", user: user, pinnedHostKey: pinned ? host.publicKey : nil) { _ in true }
        )
        guard (try? client.start()) != nil else { return }
        _ = client.takeOutbound()
        for chunk in chunks(Array(data.dropFirst())) {
            guard (try? client.receive(chunk)) != nil else { break }
            _ = client.takeOutbound()
        }
    }

    /// An established server fed cells whose plaintext (type, declared length, payload) comes
    /// from the input, sealed with the key it expects: reaches the cell dispatch, not just the tag.
    static let qnspCells: Target = { data in
        let secret = TrafficSecret(secret: SecretBytes(copying: [UInt8](repeating: 9, count: 32)))
        guard let connection = try? QNSPConnection.established(server: host, receive: secret),
            let sealer = try? CellSealer(algorithm: .aes256GCM, secret: secret, cellSize: 768)
        else { return }
        var i = 0
        var stream: [UInt8] = []
        while i + 3 <= data.count {
            let type = data[i]
            let declared = Int(data[i + 1]) << 8 | Int(data[i + 2])
            let n = min(Int(data[i + 1] & 0x3), data.count - i - 3) * 100
            let payload = Array(data[(i + 3)..<min(data.count, i + 3 + n)])
            var cell = [UInt8](repeating: 0, count: 768)
            let ok = payload.withUnsafeBytes { p in
                cell.withUnsafeMutableBytes { o in
                    (try? sealer.sealRaw(type: type, declaredLength: min(declared, 765), payload: p, into: o)) != nil
                }
            }
            if !ok { break }
            stream += cell
            if type == CellType.keyUpdate.rawValue, (try? sealer.updateKey()) == nil { break }
            i += 3 + payload.count
        }
        _ = try? connection.receive(stream)
        _ = try? connection.receiveEOF()
    }

    /// Every handshake message decoder.
    static let handshakeMessages: Target = { data in
        guard let selector = data.first else { return }
        let body = Array(data.dropFirst())
        switch selector % 11 {
        case 0: _ = try? HandshakeMessages.ClientHello(decoding: body)
        case 1: _ = try? HandshakeMessages.ClientPayload(decoding: body)
        case 2: _ = try? HandshakeMessages.ServerHello(decoding: body)
        case 3: _ = try? HandshakeMessages.ServerPayload(decoding: body)
        case 4: _ = try? HandshakeMessages.HostKeyRequest(decoding: body)
        case 5: _ = try? HandshakeMessages.HostKeyAnnouncement(decoding: body)
        case 6: _ = try? HandshakeMessages.Reject(decoding: body)
        case 7: _ = try? HandshakeMessages.Retry(decoding: body)
        case 8: _ = try? HandshakeMessages.ClientAuth(decoding: body)
        case 9: _ = try? HandshakeMessages.AuthResult(decoding: body)
        default: _ = try? ClearRecord.parse(body[...], expectedCellSize: nil, maxBodySize: 16384)
        }
    }

    // MARK: Inner SSH

    /// The inner null transport's framing and the channel-open repair, on arbitrary packets.
    static let innerSSH: Target = { data in
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
        buffer.writeBytes(data)
        if let protection = try? QNSPTunnelTransportProtection(initialKeys: NIOSSHSessionKeys.fuzz) {
            var copy = buffer
            try? protection.decryptFirstBlock(&copy)
            _ = try? protection.decryptAndVerifyRemainingPacket(&copy, sequenceNumber: 0)
        }
        _ = SSHInboundRepair.repair(buffer)
    }

    // MARK: SFTP

    /// Packet framing and every SFTP message decoder (requests and responses).
    static let sftp: Target = { data in
        var reader = SFTPPacketReader(maxPacketLength: 1 << 16)
        reader.feed(data)
        while let body = try? reader.next() { _ = try? SFTPMessage.decode(body) }
        _ = try? SFTPMessage.decode(data[...])
    }

    // MARK: Forwarding

    /// The SOCKS4/4a/5 request parser, fed in chunks.
    static let socks: Target = { data in
        var parser = SOCKSRequestParser()
        for chunk in chunks(data) {
            switch parser.feed(chunk) {
            case .needMore, .reply: continue
            default: return
            }
        }
    }

    // MARK: Files

    static func text(_ data: [UInt8]) -> String { String(decoding: data, as: UTF8.self) }

    /// qsshd's -f file and ~/.qssh/config, with forward specs.
    static let config: Target = { data in
        let t = text(data)
        _ = try? QSSHDConfigFile.arguments(from: t, path: "fuzz")
        _ = try? QSSHClientConfig.arguments(from: t, path: "fuzz", host: "host.example")
        for line in ConfigLine.parse(t, path: "fuzz") {
            _ = try? ForwardSpec.parse(forward: line.value)
            _ = try? ForwardSpec.parse(dynamic: line.value)
            _ = try? ForwardSpec.parse(hostPort: line.value)
        }
    }

    /// qssh's known_hosts and OpenSSH's (plain, hashed, @revoked, @cert-authority lines).
    static let knownHosts: Target = { data in
        let t = text(data)
        let file = KnownHosts(path: "fuzz", text: t)
        _ = file.lookup("[127.0.0.1]:22222")
        _ = file.entries.count  // every host line's key, as a lookup reads only the matching ones
        _ = OpenSSHKnownHosts(path: "fuzz", text: t)
    }

    /// The stealth line and the fixed clock the stealth targets and their seeds share.
    static let stealth = StealthLine(kemSeed: [UInt8](repeating: 7, count: 32))
    static let stealthClock: @Sendable () -> UInt64 = { 1_750_000_000 }

    /// A stealth server session fed the input in pieces (first flight, frames, probes).
    static let stealthServer: Target = { data in
        let policy = StealthSession.ProbePolicy(byteLimit: 1 << 20...1 << 20, deadlineMilliseconds: 1...1)
        guard let s = try? StealthSession(role: .server(StealthReplayFilter(startTime: 0)), line: stealth, probePolicy: policy, clock: stealthClock) else { return }
        var i = 0
        while i < data.count {
            let n = min(data.count - i, 1 + Int(data[i]) * 7)
            _ = try? s.receive(Array(data[i..<i + n])) { _ in }
            i += n
        }
        try? s.receiveEOF()
        _ = s.takeOutbound()
    }

    static let stealthLine: Target = { data in
        if let line = try? StealthLine(parsing: text(data)) { _ = line.description }
    }

    static let authorizedKeys: Target = { data in
        _ = AuthorizedKeys(text: text(data))
    }

    /// Our key files (clear ones; a protected one stops at the passphrase), public key lines,
    /// OpenSSH private keys, certificates (text and binary).
    static let keyFiles: Target = { data in
        let t = text(data)
        _ = try? PrivateKeyFile.readHeader(t)
        _ = try? PrivateKeyFile.decode(t)
        _ = try? PublicKeyLine(parsing: t)
        _ = try? OpenSSHPrivateKey.parse(t)
        _ = try? QNSPCertificate(line: t)
        _ = try? QNSPCertificate(blob: data)
    }

    /// qssh-agent's side of a connection: the framer, every request it yields through the
    /// state machine (a confirmation is answered yes), and the same frames as replies.
    static let agent: Target = { data in
        var framer = AgentFramer()
        framer.feed(data)
        var state = AgentState()
        var now: UInt64 = 0
        while let frame = try? framer.nextFrame() {
            now += 1
            _ = try? AgentResponse(frame: frame)
            guard let request = try? AgentRequest(frame: frame) else { continue }
            if case .confirm(let c) = state.handle(request, now: now) { _ = state.signConfirmed(c, now: now) }
        }
    }

    /// The audit log verifier on arbitrary file contents.
    static let auditLog: Target = { data in
        _ = AuditLog.verifyLines(data, key: nil, hostKey: host.publicKey)
    }
}

extension NIOSSHSessionKeys {
    /// Empty keys for the null scheme.
    static var fuzz: NIOSSHSessionKeys {
        NIOSSHSessionKeys(
            initialInboundIV: [],
            initialOutboundIV: [],
            inboundEncryptionKey: .init(data: [UInt8]()),
            outboundEncryptionKey: .init(data: [UInt8]()),
            inboundMACKey: .init(data: [UInt8]()),
            outboundMACKey: .init(data: [UInt8]())
        )
    }
}
