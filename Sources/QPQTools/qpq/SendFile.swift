import ArgumentParser
import Foundation
import QNSPCrypto
import QPQClient
import QPQProtocol
import QSSHTools

struct SendFile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-file",
        abstract: "Send a file to a group (encrypted; resumes an interrupted upload of the same file).",
        discussion: """
            The file is encrypted with a fresh AES-256-GCM key, uploaded to the server as a blob in
            chunks, and the key, name, size and SHA-256 go to the group inside an MLS message. Run
            the same command again after an interruption: it continues from what the server holds.
            """)
    @OptionGroup var options: QPQOptions
    @Argument var group: String
    @Argument var path: String
    @Option(name: .long, help: "The name receivers see (default: the file's own name).")
    var name: String?

    func run() throws {
        let (group, path) = (self.group, self.path)
        let name = self.name ?? (path as NSString).lastPathComponent
        let bar = ProgressBar(label: name)
        let stall = QPQTestHooks.stallAfterBytes
        let progress = QPQFileTransfer.Progress(stallAfter: stall) { done, total in bar.update(done, total) }
        let sent: (offer: QPQFileOffer, resumedAt: UInt64)
        do {
            sent = try withMessenger(options) { m, _, checkpoint in
                _ = try await m.receive()
                return try await m.sendFile(path: path, name: name, to: group, progress: progress) { (s: QPQClientState) throws(QPQClientError) in
                    try checkpoint(s)
                }
            }
        } catch QPQClientError.server(.tooLarge, let limit, _) where limit > 0 {
            bar.finish()
            throw ToolError("\(path) is too large: the server takes files of at most \(limit) bytes encrypted (about \(ProgressBar.size(limit)))")
        }
        bar.finish()
        let offer = sent.offer
        if sent.resumedAt > 0 { Terminal.warn("qpq: resumed the upload at byte \(sent.resumedAt)") }
        print("sent \(offer.name) (\(offer.size) bytes) to \(group)")
    }
}
