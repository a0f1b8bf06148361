import QSSHTestSupport
import QNSP
import QNSPCrypto
import Synchronization
import Testing

/// Keys made once per test process (key generation is the slow part of a handshake).
enum Keys {
    static let host: HostKeyPair = try! HostKeyPair.generate(comment: "test host")
    static let otherHost: HostKeyPair = try! HostKeyPair.generate(comment: "other host")
    static let user: UserKeyPair = try! UserKeyPair.generate(comment: "alice")
    static let otherUser: UserKeyPair = try! UserKeyPair.generate(comment: "mallory")
}

/// A client and a server connection wired back to back in memory, with every byte recorded.
final class Pair {
    let client: QNSPConnection
    let server: QNSPConnection
    var clientToServer: [[UInt8]] = []  // each flush of client outbound, in order
    var serverToClient: [[UInt8]] = []
    var clientReceived: [UInt8] = []
    var serverReceived: [UInt8] = []
    var clientEvents: [QNSPEvent] = []
    var serverEvents: [QNSPEvent] = []
    var clientError: QNSPError?
    var serverError: QNSPError?
    /// Called on each flight before delivery; may change the bytes (tamper tests).
    var mutateClientFlight: ((Int, inout [UInt8]) -> Void)?
    var mutateServerFlight: ((Int, inout [UInt8]) -> Void)?

    init(
        configuration: QNSPConfiguration = QNSPConfiguration(),
        serverConfiguration: QNSPConfiguration? = nil,
        host: HostKeyPair = Keys.host,
        serverHostKeys: [HostKeyPair]? = nil,
        pinned: HostPublicKey?? = .none,
        user: UserKeyPair = Keys.user,
        authorized: [UserPublicKey]? = nil,
        trust: @escaping @Sendable (HostPublicKey) -> Bool = { _ in true },
        handshakeGuard: QNSPHandshakeGuard = QNSPHandshakeGuard(),
        clientClock: (@Sendable () -> UInt64)? = nil,
        certificate: QNSPCertificate? = nil,
        authorizeCertificate: (@Sendable (String, UserPublicKey, QNSPCertificate) -> QNSPConnection.AuthorizationDecision)? = nil,
        hostCertificate: QNSPCertificate? = nil,
        verifyHostCertificate: (@Sendable (HostPublicKey, QNSPCertificate?) -> Bool)? = nil
    ) {
        let pin: HostPublicKey? = {
            switch pinned {
            case .none: return host.publicKey
            case .some(let p): return p
            }
        }()
        var clientParameters = QNSPConnection.ClientParameters(username: "alice", user: user, pinnedHostKey: pin, verifyHostKey: trust)
        if let clientClock { clientParameters.clock = clientClock }
        clientParameters.certificate = certificate
        clientParameters.verifyHostCertificate = verifyHostCertificate
        client = QNSPConnection(client: clientParameters, configuration: configuration)
        let allowed = authorized ?? [Keys.user.publicKey]
        var serverParameters = QNSPConnection.ServerParameters(hostKeys: serverHostKeys ?? [host], handshakeGuard: handshakeGuard) { _, key in
            allowed.contains(key) ? .accept : .reject("not in authorized_keys")
        }
        serverParameters.peerAddress = [127, 0, 0, 1]
        serverParameters.authorizeCertificate = authorizeCertificate
        serverParameters.hostCertificate = hostCertificate
        server = QNSPConnection(server: serverParameters, configuration: serverConfiguration ?? configuration)
    }

    /// Starts the client and moves bytes until neither side has anything to send.
    @discardableResult
    func run() -> Pair {
        do { try client.start() } catch { clientError = error }
        pump()
        return self
    }

    func pump(maxRounds: Int = 64) {
        for _ in 0..<maxRounds {
            var moved = false
            var c = client.takeOutbound()
            if !c.isEmpty {
                moved = true
                mutateClientFlight?(clientToServer.count, &c)
                clientToServer.append(c)
                deliver(c, to: server, isServer: true)
            }
            var s = server.takeOutbound()
            if !s.isEmpty {
                moved = true
                mutateServerFlight?(serverToClient.count, &s)
                serverToClient.append(s)
                deliver(s, to: client, isServer: false)
            }
            if !moved { return }
        }
    }

    func deliver(_ bytes: [UInt8], to conn: QNSPConnection, isServer: Bool) {
        if isServer ? serverError != nil : clientError != nil { return }
        do {
            var (data, events) = try conn.receive(bytes)
            // The driver's part: answer an authorization request with the server's policy.
            while case .authorizationRequired(let user, let key)? = events.last, let policy = conn.authorizationPolicy {
                events.removeLast()
                if isServer { serverEvents += events }
                var more: [UInt8] = []
                events = try conn.completeAuthorization(policy(user, key)) { more += $0 }
                data += more
            }
            if isServer { serverReceived += data; serverEvents += events } else { clientReceived += data; clientEvents += events }
        } catch {
            if isServer { serverError = error } else { clientError = error }
        }
    }

    var established: Bool { client.isEstablished && server.isEstablished }

    /// Sends application bytes from the client and delivers them.
    func clientSends(_ data: [UInt8]) throws {
        let sealed = try client.sealData(data)
        clientToServer.append(sealed)
        deliver(sealed, to: server, isServer: true)
        pump()
    }

    func serverSends(_ data: [UInt8]) throws {
        let sealed = try server.sealData(data)
        serverToClient.append(sealed)
        deliver(sealed, to: client, isServer: false)
        pump()
    }
}

/// The shared seeded generator under the name these tests use.
typealias TestRNG = SplitMix64

func hex(_ b: [UInt8]) -> String {
    let d = Array("0123456789abcdef")
    return String(b.flatMap { [d[Int($0 >> 4)], d[Int($0 & 15)]] })
}
func hex(_ s: SecretBytes) -> String { hex(s.copyBytes()) }
func unhex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        out.append(UInt8(s[i..<j], radix: 16)!)
        i = j
    }
    return out
}

/// A clock tests move by hand.
final class ManualClock: Sendable {
    private let value: Mutex<UInt64>
    init(_ start: UInt64 = 1_800_000_000) { value = Mutex(start) }
    var now: UInt64 { value.withLock { $0 } }
    func advance(_ seconds: UInt64) { value.withLock { $0 += seconds } }
    var function: @Sendable () -> UInt64 { { self.now } }
}
