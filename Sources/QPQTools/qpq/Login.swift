import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QSSHTools

struct Login: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Log this device in (creates the local store).")
    @OptionGroup var options: QPQOptions
    @Argument var user: String
    @Option(name: .long, help: "This device's name.")
    var deviceName: String = ProcessInfo.processInfo.hostName

    func run() throws {
        let password = try options.password()
        let (host, port) = try options.serverAddress()
        let (key, keyLine) = try options.pinnedHostKey()
        var state = QPQClientState(host: host, port: port, hostKey: keyLine)
        if FileManager.default.fileExists(atPath: options.store) {
            let old = try options.loadState(password)
            if old.user == user && old.host == host && old.port == port { state = old }
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let (user, name, start, options) = (self.user, String(deviceName.prefix(QPQLimits.maxDeviceName)), state, self.options)
        let final = try BlockingAsync.run { () async throws -> QPQClientState in
            let conn = try await options.connect(group: group, host: host, port: port, hostKey: key)
            do {
                let messenger = try QPQMessenger(state: start, transport: conn)
                try await messenger.login(user: user, password: Array(password.utf8), deviceName: name)
                await conn.close()
                return messenger.state
            } catch {
                await conn.close()
                throw error
            }
        }
        try options.save(final, password)
        print("logged in as \(user), device \(final.deviceId)")
    }
}
