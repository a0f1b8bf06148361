import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QSSHTools

struct Recv: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print new messages (--watch: keep printing as they arrive).")
    @OptionGroup var options: QPQOptions
    @Flag(name: .long, help: "Stay connected and print messages as they are pushed (until the connection ends).")
    var watch = false

    func run() throws {
        let watch = self.watch
        try withMessenger(options) { m, conn in
            for msg in try await m.receive() { Self.show(msg) }
            guard watch else { return }
            _ = try await conn.expect(.subscribe)
            Terminal.warn("qpq: watching (pushes arrive as they are queued)")
            while let push = try? await conn.nextPush(timeout: .hours(24)) {
                guard case .deliver(let e) = push else { break }
                if let msg = m.process(e) { Self.show(msg) }
                _ = try await conn.expect(.ack(messageIds: [e.messageId]))
            }
        }
    }

    static func show(_ m: QPQClientState.Message) {
        // Unbuffered: a reader of a pipe sees each message as it arrives.
        FileHandle.standardOutput.write(Data("[\(m.group)] \(m.sender): \(PrintableText.escaped(m.text))\n".utf8))
    }
}
