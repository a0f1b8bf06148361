import QNSPCrypto

/// The state of `qpq chat`'s screen without any I/O: the scrollback, the input line being typed,
/// and the bytes that draw them. Keys go in through ``feed(_:)``; peer text is escaped
/// (``PrintableText``) before it is kept, so nothing a peer sends reaches the terminal raw.
package struct ChatScreen {
    /// What a key press asks the chat loop to do.
    package enum Action: Equatable {
        case send(String)
        case quit
    }

    package static let maxScrollback = 1_000

    package let title: String
    package private(set) var lines: [String] = []
    package private(set) var input: [UInt8] = []
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

    /// Adds a line we wrote (already safe) to the scrollback.
    package mutating func note(_ line: String) {
        lines.append(line)
        if lines.count > Self.maxScrollback { lines.removeFirst(lines.count - Self.maxScrollback) }
    }

    /// Feeds typed bytes; returns the actions they complete (Enter, Ctrl-C, Ctrl-D on an empty line).
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
                if text == "/quit" { actions.append(.quit) } else if !text.isEmpty { actions.append(.send(text)) }
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

    /// The bytes that redraw the whole screen: title, the newest lines that fit, a rule, the input line.
    package func render() -> [UInt8] {
        var out = "\u{1B}[H\u{1B}[2J"
        out += "\u{1B}[7m" + Self.fit("qpq chat \(title) (Enter sends, Ctrl-C or /quit leaves)", columns) + "\u{1B}[0m\r\n"
        let area = rows - 3
        let shown = lines.suffix(area)
        for _ in 0..<(area - shown.count) { out += "\r\n" }
        for line in shown { out += Self.fit(line, columns) + "\r\n" }
        out += String(repeating: "-", count: columns) + "\r\n"
        // The input may end inside a character being typed; show what decodes, keep the tail visible.
        let typed = PrintableText.escaped(String(decoding: input, as: UTF8.self))
        out += "> " + String(typed.suffix(max(columns - 3, 1)))
        return Array(out.utf8)
    }

    package static func fit(_ s: String, _ columns: Int) -> String {
        s.count <= columns ? s : String(s.prefix(max(columns - 1, 0))) + "~"
    }
}
