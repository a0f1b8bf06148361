import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QPQServerNIO
import Testing

/// The client's sealed-sender connection (docs/messaging.md §8), in process over real QNSP connections.
@Suite("qpq client: sends and commits on a connection that never logs in", .serialized)
struct SealedSenderTests {
    @Test("Send, Commit and SetDisappearing go on the lazily opened sealed connection, everything else on the logged-in one",
          .timeLimit(.minutes(3)))
    func routing() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let hostKey = try HostKeyPair.generate()
        let service = try await QPQService.start(group: group, host: "127.0.0.1", port: 0, hostKey: hostKey, context: try makeServerContext(dir: dir))
        let port = try #require(service.port)
        let keyLine = PublicKeyLine.host(hostKey.publicKey, comment: "").text
        let opened = OpenCount()
        @Sendable func connect() async throws(QPQClientError) -> QPQConnection {
            try await QPQConnection.connect(group: group, host: "127.0.0.1", port: port, hostKey: hostKey.publicKey, timeout: .seconds(30))
        }
        struct Device {
            let messenger: QPQMessenger
            let connection: QPQConnection
            let main: RecordingTransport
            let sealed: RecordingTransport
            let lazy: QPQLazyConnection
        }
        func device(_ user: String) async throws -> Device {
            let conn = try await connect()
            try await QPQAccount.register(user: user, password: Array("pw".utf8), configuration: testOPAQUE, over: conn)
            let lazy = QPQLazyConnection { () async throws(QPQClientError) -> QPQConnection in
                let c = try await connect()
                await opened.add(c, for: user)
                return c
            }
            let main = RecordingTransport(conn), sealed = RecordingTransport(lazy)
            let m = try QPQMessenger(state: QPQClientState(host: "127.0.0.1", port: port, hostKey: keyLine), transport: main, sealed: sealed)
            try await m.login(user: user, password: Array("pw".utf8), deviceName: user, configuration: QOPAQUEConfigurationChoice(testOPAQUE))
            return Device(messenger: m, connection: conn, main: main, sealed: sealed, lazy: lazy)
        }
        let alice = try await device("alice"), bob = try await device("bob"), carol = try await device("carol")
        #expect(await opened.count == 0, "opened lazily: nothing sent yet")
        try await alice.messenger.createGroup("friends")
        try await alice.messenger.add(user: "bob", to: "friends")
        try await alice.messenger.add(user: "carol", to: "friends")
        #expect(await opened.count == 1)
        _ = try await bob.messenger.receive()
        _ = try await carol.messenger.receive()
        try await alice.messenger.send("hello", to: "friends")
        #expect(try await bob.messenger.receive().map(\.text) == ["hello"])
        try await bob.messenger.send("hi", to: "friends")
        try await alice.messenger.setDisappearing("friends", seconds: 3600)
        try await carol.messenger.leave("friends")
        #expect(try await alice.messenger.receive().map(\.text) == ["hi", QPQMessenger.leftText])
        #expect(try alice.messenger.members(of: "friends").sorted() == ["alice", "bob"])
        #expect(await opened.count == 3, "one sealed connection per device that sent")

        let token = QPQDRequestLog.tokenRequests
        for d in [alice, bob, carol] {
            let sealedNames = await d.sealed.names, mainNames = await d.main.names
            #expect(Set(sealedNames).isSubset(of: token), "\(sealedNames)")
            #expect(Set(mainNames).isDisjoint(with: token), "\(mainNames)")
            #expect(mainNames.contains("Fetch") && mainNames.contains("Ack") && mainNames.contains("LoginFinish"))
        }
        #expect(await alice.sealed.names == ["Commit", "Commit", "Send", "SetDisappearing", "Commit"])
        #expect(await bob.sealed.names == ["Send"])
        #expect(await carol.sealed.names == ["Send"])

        // A commit frame over 2 MiB cannot go before login: it stays on the logged-in connection.
        let big = QPQRequest.commit(groupId: [1], epoch: 0, token: [UInt8](repeating: 0, count: 32), nextTokenHash: [UInt8](repeating: 0, count: 32),
                                    add: [2], remove: [], commit: [0], welcomes: [QPQWelcome(deviceId: 2, welcome: [UInt8](repeating: 7, count: 3 << 20))])
        let small = QPQRequest.commit(groupId: [1], epoch: 0, token: [UInt8](repeating: 0, count: 32), nextTokenHash: [UInt8](repeating: 0, count: 32),
                                      add: [2], remove: [], commit: [0], welcomes: [QPQWelcome(deviceId: 2, welcome: [7])])
        #expect(!QPQMessenger.goesSealed(big) && QPQMessenger.goesSealed(small))
        #expect(QPQMessenger.goesSealed(.send(groupId: [1], epoch: 0, token: [UInt8](repeating: 0, count: 32), message: [1])))
        #expect(!QPQMessenger.goesSealed(.fetch(limit: 1)) && !QPQMessenger.goesSealed(.blobCreate(groupId: [1], size: 1)))

        // A sealed connection closed while idle is replaced before the next request goes out.
        let last = try #require(await opened.latest["alice"])
        try await last.channel.close()
        try await alice.messenger.send("after reopening", to: "friends")
        #expect(await opened.count == 4)
        #expect(try await bob.messenger.receive().map(\.text) == [QPQMessenger.leftText, "after reopening"])
        await alice.lazy.close()
        #expect(await alice.lazy.isOpen == false)

        for d in [alice, bob, carol] {
            await d.lazy.close()
            await d.connection.close()
        }
        try await service.close()
        try await group.shutdownGracefully()
    }
}

/// Counts the sealed connections opened, and keeps each user's latest.
private actor OpenCount {
    private(set) var count = 0
    private(set) var latest: [String: QPQConnection] = [:]
    func add(_ connection: QPQConnection, for user: String) {
        count += 1
        latest[user] = connection
    }
}
