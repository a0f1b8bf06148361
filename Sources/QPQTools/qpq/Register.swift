import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QSSHTools

struct Register: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create an account on the server (OPAQUE).")
    @OptionGroup var options: QPQOptions
    @Argument var user: String

    func run() throws {
        let password = try options.password()
        let (host, port) = try options.serverAddress()
        let (key, _) = try options.pinnedHostKey()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let user = self.user
        try BlockingAsync.run {
            let conn = try await QPQConnection.connect(group: group, host: host, port: port, hostKey: key)
            defer { Task { await conn.close() } }
            try await QPQAccount.register(user: user, password: Array(password.utf8), over: conn)
        }
        print("registered \(user)")
    }
}
