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
    @Option(name: .long, help: ArgumentHelp("Where received files are saved (never over an existing file).", valueName: "dir"))
    var downloadDir: String?

    func run() throws {
        let watch = self.watch
        let dir = downloadDir ?? ((options.store as NSString).deletingLastPathComponent + "/downloads")
        let stall = ProcessInfo.processInfo.environment["QPQ_TEST_STALL_AFTER_BYTES"].flatMap { UInt64($0) }
        let failed = try withMessenger(options) { m, conn, checkpoint -> Bool in
            for msg in try await m.receive() { Self.show(msg) }
            var failed = try await Self.download(m, into: dir, stall: stall, checkpoint: checkpoint)
            guard watch else { return failed }
            _ = try await conn.expect(.subscribe)
            Terminal.warn("qpq: watching (pushes arrive as they are queued)")
            while let push = try? await conn.nextPush(timeout: .hours(24)) {
                guard case .deliver(let e) = push else { break }
                if let msg = m.process(e) { Self.show(msg) }
                _ = try await conn.expect(.ack(messageIds: [e.messageId]))
                if !m.state.leaves.isEmpty { try await m.commitPendingLeaves() }
                if !m.state.downloads.isEmpty { failed = try await Self.download(m, into: dir, stall: stall, checkpoint: checkpoint) || failed }
            }
            return failed
        }
        if failed { throw ExitCode(1) }
    }

    /// Downloads the pending files; says what was saved or refused. Returns whether one was refused.
    static func download(_ m: QPQMessenger, into dir: String, stall: UInt64?, checkpoint: QPQCheckpoint) async throws -> Bool {
        guard !m.state.downloads.isEmpty else { return false }
        // The messages are acknowledged: keep the pending downloads on disk before fetching.
        try checkpoint(m.state)
        let bar = ProgressBar(label: "download")
        let results = try await m.downloadFiles(into: dir, progress: QPQFileTransfer.Progress(stallAfter: stall) { bar.update($0, $1) })
        bar.finish()
        var failed = false
        for r in results {
            switch r {
            case .saved(_, let path, let resumedAt):
                if resumedAt > 0 { Terminal.warn("qpq: resumed the download at byte \(resumedAt)") }
                FileHandle.standardOutput.write(Data("saved \(PrintableText.escaped(path))\n".utf8))
            case .refused(_, let reason):
                Terminal.warn("qpq: \(reason)")
                failed = true
            }
        }
        return failed
    }

    static func show(_ m: QPQClientState.Message) {
        // Unbuffered: a reader of a pipe sees each message as it arrives.
        FileHandle.standardOutput.write(Data("[\(m.group)] \(m.sender): \(PrintableText.escaped(m.text))\n".utf8))
    }
}
