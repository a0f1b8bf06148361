import ArgumentParser
import Dispatch
import Foundation
import NIOCore
import QNSPCrypto
import QPQClient
import QPQProtocol
import QSSHTools

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `qpq chat GROUP`: a full-screen chat in the terminal (docs/messaging.md §10.2).
struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat in a group in the terminal: its recent messages, new ones live, Enter sends, /get N downloads a file, Ctrl-C leaves.")
    @OptionGroup var options: QPQOptions
    @Argument var group: String
    @Option(name: .long, help: ArgumentHelp("Where /get saves files (never over an existing file; default: the current directory).",
                                            valueName: "dir"))
    var downloadDir: String = "."
    @Option(name: .long, help: ArgumentHelp("/get refuses files larger than this (bytes, or with K, M, G; 0: no limit), as recv does.",
                                            valueName: "size"))
    var maxDownload: String = "32M"

    /// What the chat loop waits for: keys, pushes, a resize, a signal, a download's progress and end.
    enum Event: Sendable {
        case keys([UInt8])
        case push(QPQPush)
        case resize
        case quit(String?)
        /// Work that touches the messenger, held back while a download runs (it uses the messenger).
        case action(ChatScreen.Action)
        case progress(done: UInt64, total: UInt64)
        case downloaded(number: Int, Result<[QPQMessenger.DownloadResult], QPQClientError>)
    }

    /// Where and how much `/get` downloads.
    struct Downloads: Sendable {
        var dir: String
        var maxSize: UInt64?
        var stall: UInt64?
    }

    func validate() throws {
        guard Recv.parseSize(maxDownload) != nil else {
            throw ValidationError("--max-download: \(maxDownload) is not a size (e.g. 32M, 1G, 500000, 0 for no limit)")
        }
    }

    func run() throws {
        guard isatty(0) == 1, isatty(1) == 1 else { throw ToolError("qpq chat needs a terminal (use send and recv --watch otherwise)") }
        let group = self.group
        let limit = Recv.parseSize(maxDownload) ?? Recv.defaultMaxDownload
        let downloads = Downloads(dir: downloadDir, maxSize: limit == 0 ? nil : limit, stall: QPQTestHooks.stallAfterBytes)
        let reason = try withMessenger(options) { m, conn, checkpoint in
            try await Self.chat(m, conn, group: group, downloads: downloads, checkpoint: checkpoint)
        }
        if let reason { throw ToolError(reason) }
    }

    /// Runs the screen until the user leaves (nil) or the connection ends (the reason).
    static func chat(_ m: QPQMessenger, _ conn: QPQConnection, group: String, downloads: Downloads,
                     checkpoint: QPQCheckpoint) async throws -> String? {
        _ = try m.members(of: group)  // an unknown group fails before the screen is taken
        _ = try await m.receive()
        _ = try await conn.expect(.subscribe)

        let (events, sink) = AsyncStream<Event>.makeStream()
        // Signals become events: the terminal is restored on the way out by the same code as Ctrl-C.
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGWINCH] {
            if sig != SIGWINCH { signal(sig, SIG_IGN) }
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { sink.yield(sig == SIGWINCH ? .resize : .quit(nil)) }
            source.resume()
            sources.append(source)
        }
        defer { for s in sources { s.cancel() } }
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 1024)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { sink.yield(.quit(nil)); return }
                sink.yield(.keys(Array(buffer[0..<n])))
            }
        }
        reader.start()  // blocked in read(2) when we leave; the process exits right after
        let pushes = Task {
            while true {
                do throws(QPQClientError) {
                    guard let push = try await conn.nextPush(timeout: .hours(24)) else { sink.yield(.quit("the server closed the connection")); return }
                    sink.yield(.push(push))
                } catch .timeout {
                    continue
                } catch {
                    sink.yield(.quit("connection: \(error)")); return
                }
            }
        }
        defer { pushes.cancel() }

        let size = RawTerminal.windowSize(fd: 1) ?? (rows: 24, columns: 80)
        var screen = ChatScreen(title: group, rows: size.rows, columns: size.columns)
        func show(_ msg: QPQClientState.Message, group other: String?) {
            if let file = msg.file {
                let pending = m.state.downloads.contains { $0.messageId == msg.messageId }
                screen.appendFile(sender: msg.sender, name: file.name, size: file.size, messageId: msg.messageId, pending: pending,
                                  savedAs: msg.own == true ? nil : file.savedAs, group: other)
            } else {
                screen.append(sender: msg.sender, text: msg.text, group: other)
            }
        }
        for msg in m.state.messages.filter({ $0.group == group }).suffix(ChatScreen.maxScrollback) { show(msg, group: nil) }
        screen.note("-- connected as \(PrintableText.escaped(m.state.user)); members: "
                    + PrintableText.escaped((try? m.members(of: group).joined(separator: ", ")) ?? "?"))
        let terminal = RawTerminal(fd: 0)
        terminal.enable()
        defer {
            terminal.restore()
            put("\u{1B}[0m\r\n")
        }

        // A download runs in its own task while the screen keeps taking keys; pushes and typed
        // lines wait in `held` until it ends, so the messenger is used by one task at a time.
        var downloading: (name: String, task: Task<Void, Never>)?
        var held: [Event] = []

        func startDownload(messageId id: UInt64, number: Int) {
            let message = m.state.messages.last { $0.messageId == id }
            guard m.state.downloads.contains(where: { $0.messageId == id }), let file = message?.file else {
                if let path = message?.file?.savedAs {
                    screen.note("-- file \(number) is " + (message?.own == true ? "yours (sent from " : "already saved (")
                                + PrintableText.escaped(path) + ")")
                } else {
                    screen.note("-- file \(number) is not offered any more (a download of it was refused)")
                }
                return
            }
            do throws(QPQClientError) {
                try checkpoint(m.state)  // its messages are acknowledged: keep the pending download on disk first
            } catch {
                screen.note("!! " + PrintableText.escaped("\(error)", backslash: false))
                return
            }
            screen.status = ChatScreen.progress(name: file.name, done: 0, total: file.size)
            let progress = QPQFileTransfer.Progress(stallAfter: downloads.stall) { done, total in sink.yield(.progress(done: done, total: total)) }
            let task = Task {
                do throws(QPQClientError) {
                    let results = try await m.downloadFiles(into: downloads.dir, maxSize: downloads.maxSize, only: [id], progress: progress)
                    sink.yield(.downloaded(number: number, .success(results)))
                } catch {
                    sink.yield(.downloaded(number: number, .failure(error)))
                }
            }
            downloading = (file.name, task)
        }

        func finishDownload(number: Int, _ outcome: Result<[QPQMessenger.DownloadResult], QPQClientError>) {
            let name = PrintableText.escaped(downloading?.name ?? "?")
            downloading = nil
            screen.status = nil
            switch outcome {
            case .success(let results):
                if results.isEmpty { screen.note("-- file \(number) is not pending any more: nothing downloaded") }
                for r in results {
                    switch r {
                    case .saved(_, let path, let resumedAt):
                        if resumedAt > 0 { screen.note("-- resumed the download of \(name) at byte \(resumedAt)") }
                        screen.note("-- saved " + PrintableText.escaped(path))
                    case .refused(_, let reason):
                        screen.note("!! file \(number) not saved: " + PrintableText.escaped(reason, backslash: false))
                    case .held(let id, let fileName, let size, let reason):
                        var then = "start the chat with a larger --max-download, or: qpq recv --accept-file \(id)"
                        if case .noSpace = reason { then = "free space, then /get \(number) again" }
                        screen.note("!! not downloaded: " + Recv.held(name: fileName, size: size, reason: reason, dir: downloads.dir) + "; " + then)
                    }
                }
            case .failure(let error):
                screen.note("!! download of \(name) failed: " + PrintableText.escaped("\(error)", backslash: false)
                            + " (/get \(number) resumes it)")
            }
        }

        /// Handles one event; returns whether the chat ends, and why (nil: the user left).
        func handle(_ event: Event) async throws -> (end: Bool, reason: String?) {
            switch event {
            case .keys(let bytes):
                for action in screen.feed(bytes) {
                    if action == .quit { return (true, nil) }
                    if let current = downloading {
                        held.append(.action(action))
                        switch action {
                        case .send: screen.note("-- (sent when the download of \(PrintableText.escaped(current.name)) ends)")
                        case .download(_, let n): screen.note("-- file \(n) is downloaded after \(PrintableText.escaped(current.name))")
                        case .quit: break
                        }
                    } else {
                        let r = try await handle(.action(action))
                        if r.end { return r }
                    }
                }
            case .action(.send(let text)):
                do {
                    try await m.send(text, to: group)
                    screen.append(sender: m.state.user, text: text)
                } catch {
                    screen.note("!! not sent: " + PrintableText.escaped("\(error)"))
                }
            case .action(.download(let id, let number)):
                startDownload(messageId: id, number: number)
            case .action(.quit):
                return (true, nil)
            case .push(.deliver(let e)):
                if let msg = m.process(e) { show(msg, group: msg.group == group ? nil : msg.group) }
                _ = try await conn.expect(.ack(messageIds: [e.messageId]))
                if !m.state.leaves.isEmpty { try? await m.commitPendingLeaves() }
            case .push(let other):
                return (true, "the server ended the session: \(other)")
            case .resize:
                if let s = RawTerminal.windowSize(fd: 1) { (screen.rows, screen.columns) = (max(s.rows, 3), max(s.columns, 10)) }
            case .quit(let reason):
                return (true, reason)
            case .progress(let done, let total):
                if let current = downloading { screen.status = ChatScreen.progress(name: current.name, done: done, total: total) }
            case .downloaded(let number, let outcome):
                finishDownload(number: number, outcome)
                while downloading == nil, !held.isEmpty {
                    let r = try await handle(held.removeFirst())
                    if r.end { return r }
                }
            }
            return (false, nil)
        }

        func run() async throws -> String? {
            put(screen.render())
            for await event in events {
                if downloading != nil, case .push = event {
                    held.append(event)
                    continue
                }
                let r = try await handle(event)
                if r.end { return r.reason }
                put(screen.render())
            }
            return nil
        }
        // Leaving during a download: end it (its partial file stays for the next /get or recv)
        // before the state is saved, so that nothing else uses the messenger then.
        func stopDownload() async {
            guard let current = downloading else { return }
            current.task.cancel()
            await conn.close()
            await current.task.value
            downloading = nil
        }
        do {
            let reason = try await run()
            await stopDownload()
            // Lines typed during the download still go out (on the sending connection); held
            // pushes were not acknowledged, so the server delivers them again next time.
            for case .action(.send(let text)) in held {
                do { try await m.send(text, to: group) } catch {
                    Terminal.warn("\r\nqpq: not sent: " + PrintableText.escaped(text) + ": " + PrintableText.escaped("\(error)", backslash: false))
                }
            }
            return reason
        } catch {
            await stopDownload()
            throw error
        }
    }

    static func put(_ text: String) { put(Array(text.utf8)) }

    static func put(_ bytes: [UInt8]) {
        var rest = bytes[...]
        while !rest.isEmpty {
            let n = rest.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            rest = rest.dropFirst(n)
        }
    }
}
