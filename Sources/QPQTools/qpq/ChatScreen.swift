import QNSPCrypto

/// The state of `qpq chat`'s screen without any I/O: the scrollback, the input line being typed,
/// the status shown in the rule (a download's progress), the numbers of the files shown, and the
/// bytes that draw them. Keys go in through ``feed(_:)``; peer text is escaped (``PrintableText``)
/// before it is kept, so nothing a peer sends reaches the terminal raw.
package struct ChatScreen {
    /// What a key press asks the chat loop to do.
    package enum Action: Equatable, Sendable {
        case send(String)
        /// `/get N`: download the file shown as `[file N]` (its message id).
        case download(messageId: UInt64, number: Int)
        case quit
    }

    package static let maxScrollback = 1_000

    /// The lines `/help` adds.
    package static let help = [
        "-- commands:",
        "--   /get N       download the file shown as [file N] (also /download N)",
        "--   /help        this list",
        "--   /quit        leave (also Ctrl-C)",
        "--   //text       send a line that starts with /",
    ]

    package let title: String
    package private(set) var lines: [String] = []
    package private(set) var input: [UInt8] = []
    /// The message ids of the files shown, `[file N]` being `files[N - 1]`.
    package private(set) var files: [UInt64] = []
    /// Shown in the rule above the input line (already safe); nil: a plain rule.
    package var status: String?
    package var rows: Int
    package var columns: Int
    private var escape = 0  // 0: none, 1: after ESC, 2: inside CSI/SS3

    package init(title: String, rows: Int, columns: Int) {
        self.title = PrintableText.escaped(title)
        self.rows = max(rows, 3)
        self.columns = max(columns, 10)
    }

    /// Adds a line to the scrollback; `text` is escaped here.
    package mutating func append(sender: String, text: String, group: String? = nil) {
        let prefix = group.map { "[\(PrintableText.escaped($0))] " } ?? ""
        note(prefix + PrintableText.escaped(sender) + ": " + PrintableText.escaped(text))
    }

    /// Adds a file message: `sender: [file N] NAME (SIZE)`, with the command that downloads it if
    /// it is `pending`, or where it was saved (`savedAs`). Returns N. The name, sender and path are
    /// escaped here; a file shown twice (the same message id) keeps its number.
    @discardableResult
    package mutating func appendFile(sender: String, name: String, size: UInt64, messageId: UInt64, pending: Bool,
                                     savedAs: String? = nil, group: String? = nil) -> Int {
        let number: Int
        if let i = files.firstIndex(of: messageId) { number = i + 1 } else {
            files.append(messageId)
            number = files.count
        }
        let prefix = group.map { "[\(PrintableText.escaped($0))] " } ?? ""
        note(prefix + PrintableText.escaped(sender) + ": [file \(number)] " + PrintableText.escaped(name)
             + " (\(Self.size(size)))"
             + (pending ? " - /get \(number) downloads it" : savedAs.map { " - saved as " + PrintableText.escaped($0) } ?? ""))
        return number
    }

    /// Adds a line we wrote (already safe) to the scrollback.
    package mutating func note(_ line: String) {
        lines.append(line)
        if lines.count > Self.maxScrollback { lines.removeFirst(lines.count - Self.maxScrollback) }
    }

    /// Feeds typed bytes; returns the actions they complete (Enter, Ctrl-C, Ctrl-D on an empty line).
    /// Commands (`/help`, `/get N`, `/quit`) are handled here; `/help` and mistakes add lines.
    package mutating func feed(_ bytes: some Sequence<UInt8>) -> [Action] {
        var actions: [Action] = []
        for b in bytes {
            if escape == 1 { escape = (b == UInt8(ascii: "[") || b == UInt8(ascii: "O")) ? 2 : 0; continue }
            if escape == 2 { if (0x40...0x7E).contains(b) { escape = 0 }; continue }  // arrows etc.: ignored
            switch b {
            case 0x03: actions.append(.quit)  // Ctrl-C
            case 0x04 where input.isEmpty: actions.append(.quit)  // Ctrl-D
            case 0x0D, 0x0A:
                let text = String(decoding: input, as: UTF8.self)
                input.removeAll()
                if let action = command(text) { actions.append(action) }
            case 0x7F, 0x08:  // backspace: one whole UTF-8 character
                while let last = input.popLast(), last & 0xC0 == 0x80 {}
            case 0x15: input.removeAll()  // Ctrl-U
            case 0x1B: escape = 1
            case 0x00..<0x20: break  // other control keys
            default: if input.count < 4_096 { input.append(b) }
            }
        }
        return actions
    }

    /// A line the user entered: a command, or text to send (`//x` sends `/x`).
    private mutating func command(_ text: String) -> Action? {
        guard text.hasPrefix("/") else { return text.isEmpty ? nil : .send(text) }
        if text.hasPrefix("//") { return .send(String(text.dropFirst())) }
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        switch words.first ?? "" {
        case "/quit" where words.count == 1:
            return .quit
        case "/help" where words.count == 1:
            for line in Self.help { note(line) }
            return nil
        case "/get", "/download":
            guard words.count == 2, let n = Int(words[1]) else {
                note("!! usage: \(words[0]) N (N: the number shown in [file N])")
                return nil
            }
            guard n >= 1, n <= files.count else {
                note(files.isEmpty ? "!! no file has been shown in this chat" : "!! no file \(n): the files shown are 1 to \(files.count)")
                return nil
            }
            return .download(messageId: files[n - 1], number: n)
        default:
            note("!! unknown command " + PrintableText.escaped(String(words.first ?? "")) + " (/help lists the commands; //text sends /text)")
            return nil
        }
    }

    /// The bytes that redraw the whole screen: title, the newest lines that fit, a rule (with the
    /// status in it), the input line.
    package func render() -> [UInt8] {
        var out = "\u{1B}[H\u{1B}[2J"
        out += "\u{1B}[7m" + Self.fit("qpq chat \(title) (Enter sends, /help for commands, Ctrl-C or /quit leaves)", columns) + "\u{1B}[0m\r\n"
        let area = rows - 3
        let shown = lines.suffix(area)
        for _ in 0..<(area - shown.count) { out += "\r\n" }
        for line in shown { out += Self.fit(line, columns) + "\r\n" }
        if let status {
            let head = Self.fit("-- " + status + " ", columns)
            out += head + String(repeating: "-", count: max(columns - head.count, 0)) + "\r\n"
        } else {
            out += String(repeating: "-", count: columns) + "\r\n"
        }
        // The input may end inside a character being typed; show what decodes, keep the tail visible.
        let typed = PrintableText.escaped(String(decoding: input, as: UTF8.self))
        out += "> " + String(typed.suffix(max(columns - 3, 1)))
        return Array(out.utf8)
    }

    package static func fit(_ s: String, _ columns: Int) -> String {
        s.count <= columns ? s : String(s.prefix(max(columns - 1, 0))) + "~"
    }

    /// A size for people: `512 B`, `4.0 KiB`, `3.2 MiB`, `1.5 GiB`.
    package static func size(_ n: UInt64) -> String {
        if n < 1024 { return "\(n) B" }
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var value = Double(n) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }

    /// The status of a download in progress: `downloading NAME 45% (1.2 MiB of 2.7 MiB)`; `name` is escaped here.
    package static func progress(name: String, done: UInt64, total: UInt64) -> String {
        let percent = total == 0 ? 100 : Int(min(100, done.multipliedReportingOverflow(by: 100).partialValue / total))
        return "downloading \(PrintableText.escaped(name)) \(percent)% (\(size(done)) of \(size(total)))"
    }
}
