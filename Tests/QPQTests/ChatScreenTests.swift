import QSSHTestSupport
import QPQTools
import Testing

@Suite("qpq chat screen: keys and rendering (no I/O)")
struct ChatScreenTests {
    @Test("Enter sends, /quit and Ctrl-C quit, backspace removes a whole character, arrows and controls are ignored")
    func keys() {
        var s = ChatScreen(title: "friends", rows: 10, columns: 40)
        #expect(s.feed(Array("hé".utf8) + [0x7F] + Array("llo".utf8) + [0x1B, 0x5B, 0x41, 0x01, 0x0D]) == [.send("hllo")])
        #expect(s.input.isEmpty)
        #expect(s.feed([0x0D]) == [], "an empty line sends nothing")
        #expect(s.feed(Array("junk".utf8) + [0x15] + Array("/quit\r".utf8)) == [.quit])
        #expect(s.feed([0x03]) == [.quit])
        #expect(s.feed(Array("x".utf8) + [0x04]) == [], "Ctrl-D only on an empty line")
        #expect(s.feed([0x15, 0x04]) == [.quit])
    }

    @Test("the newest lines fit the window; long lines are cut")
    func layout() {
        var s = ChatScreen(title: "g", rows: 6, columns: 20)
        for i in 0..<10 { s.append(sender: "bob", text: "message \(i) " + String(repeating: "x", count: 30)) }
        let text = String(decoding: s.render(), as: UTF8.self)
        #expect(text.contains("bob: message 9 xxxx~") && text.contains("bob: message 7") && !text.contains("bob: message 6"))
        #expect(text.split(separator: "\r\n", omittingEmptySubsequences: false).count == 6)
    }

    @Test("random peer text and random keys never put a control character on the terminal", arguments: 0..<4)
    func randomized(seed: UInt64) {
        var rng = QPQRandom(seed: 0xC4A7 &+ seed)
        var s = ChatScreen(title: "t\u{1B}[2J", rows: Int.random(in: 0...40, using: &rng), columns: Int.random(in: 0...120, using: &rng))
        for _ in 0..<500 {
            let raw = rng.bytes(upTo: 80)
            let text = String(decoding: raw, as: UTF8.self)
            if Bool.random(using: &rng) {
                s.append(sender: text, text: text, group: Bool.random(using: &rng) ? text : nil)
            } else {
                for action in s.feed(raw) { if case .send(let t) = action { #expect(!t.isEmpty) } }
            }
            // Remove the sequences the screen itself writes; nothing else may control the terminal.
            // (On bytes: a String would merge "\r\n" with a combining mark that follows it.)
            let shown = String(decoding: Self.strip(s.render(), ["\u{1B}[H", "\u{1B}[2J", "\u{1B}[7m", "\u{1B}[0m", "\r\n"]), as: UTF8.self)
            let bad = shown.unicodeScalars.first { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0 == "\u{202E}" }
            #expect(bad == nil, "control U+\(String(bad?.value ?? 0, radix: 16)) reached the terminal (seed \(seed)): \(shown.debugDescription)")
            if bad != nil { return }
        }
    }

    static func strip(_ bytes: [UInt8], _ sequences: [String]) -> [UInt8] {
        let seqs = sequences.map { Array($0.utf8) }
        var out: [UInt8] = []
        var i = 0
        outer: while i < bytes.count {
            for q in seqs where bytes.count - i >= q.count && Array(bytes[i..<(i + q.count)]) == q {
                i += q.count
                continue outer
            }
            out.append(bytes[i])
            i += 1
        }
        return out
    }
}
