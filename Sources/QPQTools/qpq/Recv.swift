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
    @Option(name: .long, help: ArgumentHelp("""
        Download offered files up to this size automatically (bytes, or with K, M, G; 0: no limit). \
        Larger ones are listed with the command that fetches them.
        """, valueName: "size"))
    var maxDownload: String = "32M"
    @Option(name: .long, help: ArgumentHelp("Also download this pending file whatever its size (the id `recv` lists; repeatable).",
                                            valueName: "id"))
    var acceptFile: [UInt64] = []

    /// The default of `--max-download` (docs/messaging.md §10).
    static let defaultMaxDownload: UInt64 = 32 * 1024 * 1024

    /// `123`, `64K`, `32M`, `2G` (binary multiples); nil if not a size.
    static func parseSize(_ text: String) -> UInt64? {
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = Substring(text.uppercased())
        if digits.hasSuffix("IB") { digits = digits.dropLast(2) } else if digits.hasSuffix("B") { digits = digits.dropLast() }
        var multiplier: UInt64 = 1
        if let last = digits.last, let m = units[last] { multiplier = m; digits = digits.dropLast() }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let n = UInt64(digits) else { return nil }
        let (v, overflow) = n.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : v
    }

    func validate() throws {
        guard Self.parseSize(maxDownload) != nil else {
            throw ValidationError("--max-download: \(maxDownload) is not a size (e.g. 32M, 1G, 500000, 0 for no limit)")
        }
    }

    func run() throws {
        let watch = self.watch
        let dir = downloadDir ?? ((options.store as NSString).deletingLastPathComponent + "/downloads")
        let stall = QPQTestHooks.stallAfterBytes
        let limit = Self.parseSize(maxDownload) ?? Self.defaultMaxDownload
        let policy = DownloadPolicy(maxSize: limit == 0 ? nil : limit, accept: Set(acceptFile))
        let failed = try withMessenger(options) { m, conn, checkpoint -> Bool in
            for msg in try await m.receive() { Self.show(msg) }
            var failed = try await Self.download(m, into: dir, policy: policy, stall: stall, checkpoint: checkpoint)
            guard watch else { return failed }
            _ = try await conn.expect(.subscribe)
            Terminal.warn("qpq: watching (pushes arrive as they are queued)")
            while let push = try? await conn.nextPush(timeout: .hours(24)) {
                guard case .deliver(let e) = push else { break }
                if let msg = m.process(e) { Self.show(msg) }
                _ = try await conn.expect(.ack(messageIds: [e.messageId]))
                if !m.state.leaves.isEmpty { try await m.commitPendingLeaves() }
                if !m.state.downloads.isEmpty { failed = try await Self.download(m, into: dir, policy: policy, stall: stall, checkpoint: checkpoint) || failed }
            }
            return failed
        }
        if failed { throw ExitCode(1) }
    }

    /// Which pending files are fetched: up to `maxSize` (nil: any), and those in `accept` whatever their size.
    struct DownloadPolicy {
        var maxSize: UInt64?
        var accept: Set<UInt64>
    }

    /// Downloads the pending files; says what was saved, refused or held back (with the command
    /// that fetches it). Returns whether one was refused.
    static func download(_ m: QPQMessenger, into dir: String, policy: DownloadPolicy, stall: UInt64?, checkpoint: QPQCheckpoint) async throws -> Bool {
        guard !m.state.downloads.isEmpty else { return false }
        // The messages are acknowledged: keep the pending downloads on disk before fetching.
        try checkpoint(m.state)
        let bar = ProgressBar(label: "download")
        let results = try await m.downloadFiles(into: dir, maxSize: policy.maxSize, accept: policy.accept, progress: QPQFileTransfer.Progress(stallAfter: stall) { bar.update($0, $1) })
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
            case .held(let id, let name, let size, let reason):
                var then = "fetch it with"
                if case .noSpace = reason { then = "free space, then" }
                FileHandle.standardOutput.write(Data(("not downloaded: \(held(name: name, size: size, reason: reason, dir: dir)); "
                    + "\(then): qpq recv --accept-file \(id)\n").utf8))
            }
        }
        return failed
    }

    /// Why a file was not downloaded, the same words for `recv` and `chat`: `NAME (SIZE bytes) is over
    /// --max-download (LIMIT bytes)` or `... does not fit in DIR (N bytes free)`; the name and directory escaped.
    static func held(name: String, size: UInt64, reason: QPQMessenger.HeldReason, dir: String) -> String {
        switch reason {
        case .overLimit(let limit):
            "\(PrintableText.escaped(name)) (\(size) bytes) is over --max-download (\(limit) bytes)"
        case .noSpace(let available):
            "\(PrintableText.escaped(name)) (\(size) bytes) does not fit in \(PrintableText.escaped(dir)) (\(available) bytes free)"
        }
    }

    static func show(_ m: QPQClientState.Message) {
        // Unbuffered: a reader of a pipe sees each message as it arrives.
        FileHandle.standardOutput.write(Data("[\(m.group)] \(m.sender): \(PrintableText.escaped(m.text))\n".utf8))
    }
}
