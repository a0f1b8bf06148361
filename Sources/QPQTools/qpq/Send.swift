import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QSSHTools

struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send a text message to a group.")
    @OptionGroup var options: QPQOptions
    @Argument var group: String
    @Argument var text: String
    func run() throws {
        let (group, text) = (self.group, self.text)
        try withMessenger(options) { m, _ in
            _ = try await m.receive()
            try await m.send(text, to: group)
        }
    }
}
