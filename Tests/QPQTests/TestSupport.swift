import Foundation
import QNSPCrypto
import QOPAQUE
import QPQClient
import QPQProtocol
import QPQServer
import QPQServerPostgres

/// Cheap Argon2id for tests that run many logins (same context as qpq's default).
let testOPAQUE: OPAQUEConfiguration = {
    do {
        return try OPAQUEConfiguration(context: OPAQUEConfiguration.qpqDefault.context,
                                       keyStretching: .argon2id(Argon2idParameters(memoryKiB: 1024, iterations: 1)))
    } catch {
        preconditionFailure("test OPAQUE configuration: \(error)")
    }
}()

/// A fresh temporary directory, removed by `cleanup()`.
struct TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "qpq-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// A server context on a fresh GRDB database (and a fresh OPAQUE setup).
func makeServerContext(dir: TempDir, clock: (@Sendable () -> UInt64)? = nil) throws -> QPQServerContext {
    let store = try GRDBStore(path: dir.path + "/qpqd.sqlite")
    let opaque = OPAQUEServer(setup: try OPAQUEServerSetup.generate(), configuration: .qpqDefault)
    if let clock { return QPQServerContext(store: store, opaque: opaque, clock: clock) }
    return QPQServerContext(store: store, opaque: opaque)
}

/// A server context on a fresh database of `kind` for `body`: SQLite in a temporary directory, or
/// PostgreSQL (skipped if it is not installed and not required): a new database on the suite's
/// server (``SharedPostgres``), else on a server of its own, stopped after.
func withServerContext(_ kind: StoreKind, _ body: (QPQServerContext, TempDir) async throws -> Void) async throws {
    let dir = TempDir()
    defer { dir.cleanup() }
    switch kind {
    case .sqlite:
        try await body(try makeServerContext(dir: dir), dir)
    case .postgres:
        guard PostgresServer.enabled else { return }
        func run(_ pg: PostgresServer) async throws {
            let store = try await offPool {
                try PostgresStore(location: pg.location(database: try SharedPostgres.freshDatabase(on: pg)))
            }
            let opaque = OPAQUEServer(setup: try OPAQUEServerSetup.generate(), configuration: .qpqDefault)
            try await body(QPQServerContext(store: store, opaque: opaque), dir)
        }
        if let shared = SharedPostgres.server {
            try await run(shared)
        } else {
            try await withPostgres { try await run($0) }
        }
    }
}

/// One server session driven in process; every frame goes through the codec both ways. With a
/// store that blocks on another thread's I/O (PostgreSQL), each request is handled on a thread of
/// its own, never on the Swift pool (calls on one transport must then not overlap).
actor InProcessTransport: QPQTransport {
    var session: QPQServerSession
    var outputs: [QPQSessionOutput] = []
    var nextId: UInt32 = 1
    private let offThePool: Bool

    init(context: QPQServerContext) {
        session = QPQServerSession(context: context)
        offThePool = context.store is PostgresStore
    }

    func call(_ request: QPQRequest) async throws(QPQClientError) -> QPQResponse {
        do {
            let id = nextId
            nextId += 1
            let wire = try QPQCodec.encodeBody(QPQFrame(requestId: id, message: .request(request)))
            guard case .request(let decoded) = try QPQCodec.decodeBody(wire).message else { throw QPQClientError.unexpectedResponse("codec") }
            let out: QPQSessionOutput
            if offThePool {
                let current = session
                let (next, o) = try await offPool { () -> (QPQServerSession, QPQSessionOutput) in
                    var s = current
                    let o = s.handle(decoded)
                    return (s, o)
                }
                session = next
                out = o
            } else {
                out = session.handle(decoded)
            }
            outputs.append(out)
            let back = try QPQCodec.decodeBody(try QPQCodec.encodeBody(QPQFrame(requestId: id, message: .response(out.response))))
            guard back.requestId == id, case .response(let response) = back.message else { throw QPQClientError.unexpectedResponse("codec") }
            return response
        } catch let e as QPQClientError {
            throw e
        } catch {
            throw .unexpectedResponse("\(error)")
        }
    }

    var lastOutput: QPQSessionOutput? { outputs.last }
}

/// A registered user with one logged-in device on its own transport.
struct TestDevice {
    let user: String
    let identity: SignatureScheme.PrivateKey
    let credentials: QPQSessionCredentials
    let transport: InProcessTransport
}

func registerAndLogin(_ user: String, password: String = "correct horse", context: QPQServerContext) async throws -> TestDevice {
    let transport = InProcessTransport(context: context)
    try await QPQAccount.register(user: user, password: Array(password.utf8), configuration: testOPAQUE, over: transport)
    let identity = try SignatureScheme.PrivateKey.generate()
    let credentials = try await QPQAccount.login(user: user, password: Array(password.utf8), deviceId: 0, deviceName: "\(user)-laptop",
                                                 identity: identity, configuration: testOPAQUE, over: transport)
    return TestDevice(user: user, identity: identity, credentials: credentials, transport: transport)
}

let zeroToken = [UInt8](repeating: 0, count: 32)
func token(_ seed: UInt8) -> [UInt8] { [UInt8](repeating: seed, count: 32) }
func tokenHash(_ seed: UInt8) -> [UInt8] { KeyDerivation.sha256(token(seed)) }
