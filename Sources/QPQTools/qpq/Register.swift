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
        let (user, options) = (self.user, self.options)
        try BlockingAsync.run {
            let conn = try await options.connect(group: group, host: host, port: port, hostKey: key)
            // Closed before returning: a close left to a detached task could run after the event
            // loop group stopped (NIO's "Cannot schedule tasks on an EventLoop that has already shut down").
            do {
                try await QPQAccount.register(user: user, password: Array(password.utf8), over: conn)
            } catch {
                await conn.close()
                throw error
            }
            await conn.close()
        }
        print("registered \(user)")
    }
}
