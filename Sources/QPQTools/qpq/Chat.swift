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
        abstract: "Chat in a group in the terminal: its recent messages, new ones live, Enter sends, Ctrl-C leaves.")
    @OptionGroup var options: QPQOptions
    @Argument var group: String

    /// What the chat loop waits for: keys, pushes, a resize, a signal.
    enum Event: Sendable {
        case keys([UInt8])
        case push(QPQPush)
        case resize
        case quit(String?)
    }

    func run() throws {
        guard isatty(0) == 1, isatty(1) == 1 else { throw ToolError("qpq chat needs a terminal (use send and recv --watch otherwise)") }
        let group = self.group
        let reason = try withMessenger(options) { m, conn in try await Self.chat(m, conn, group: group) }
        if let reason { throw ToolError(reason) }
    }

    /// Runs the screen until the user leaves (nil) or the connection ends (the reason).
    static func chat(_ m: QPQMessenger, _ conn: QPQConnection, group: String) async throws -> String? {
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
        for msg in m.state.messages.filter({ $0.group == group }).suffix(ChatScreen.maxScrollback) {
            screen.append(sender: msg.sender, text: msg.text)
        }
        screen.note("-- connected as \(PrintableText.escaped(m.state.user)); members: "
                    + PrintableText.escaped((try? m.members(of: group).joined(separator: ", ")) ?? "?"))
        let terminal = RawTerminal(fd: 0)
        terminal.enable()
        defer {
            terminal.restore()
            put("\u{1B}[0m\r\n")
        }
        put(screen.render())
        for await event in events {
            switch event {
            case .keys(let bytes):
                for action in screen.feed(bytes) {
                    switch action {
                    case .quit: return nil
                    case .send(let text):
                        do {
                            try await m.send(text, to: group)
                            screen.append(sender: m.state.user, text: text)
                        } catch {
                            screen.note("!! not sent: " + PrintableText.escaped("\(error)"))
                        }
                    }
                }
            case .push(.deliver(let e)):
                if let msg = m.process(e) {
                    screen.append(sender: msg.sender, text: msg.text, group: msg.group == group ? nil : msg.group)
                }
                _ = try await conn.expect(.ack(messageIds: [e.messageId]))
                if !m.state.leaves.isEmpty { try? await m.commitPendingLeaves() }
            case .push(let other):
                return "the server ended the session: \(other)"
            case .resize:
                if let s = RawTerminal.windowSize(fd: 1) { (screen.rows, screen.columns) = (max(s.rows, 3), max(s.columns, 10)) }
            case .quit(let reason):
                return reason
            }
            put(screen.render())
        }
        return nil
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
