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

    @Test("commands: /help lists them, /get N and /download N name a shown file, mistakes and unknown commands add a line and send nothing, //x sends /x")
    func commands() {
        var s = ChatScreen(title: "friends", rows: 20, columns: 100)
        #expect(s.feed(Array("/help\r".utf8)) == [])
        #expect(s.lines == ChatScreen.help && s.lines.contains { $0.contains("/get N") } && s.lines.contains { $0.contains("/quit") })
        #expect(s.feed(Array("/get 1\r".utf8)) == [])
        #expect(s.lines.last == "!! no file has been shown in this chat")
        #expect(s.appendFile(sender: "bob", name: "a.txt", size: 10, messageId: 70, pending: true) == 1)
        #expect(s.appendFile(sender: "carol", name: "b.bin", size: 3 << 20, messageId: 71, pending: false, group: "work") == 2)
        #expect(s.appendFile(sender: "bob", name: "a.txt", size: 10, messageId: 70, pending: true) == 1, "the same message keeps its number")
        #expect(s.files == [70, 71])
        #expect(s.appendFile(sender: "bob", name: "c", size: 1, messageId: 72, pending: false, savedAs: "dl/c\u{1B}") == 3)
        #expect(s.lines.last == #"bob: [file 3] c (1 B) - saved as dl/c\x1b"#)
        #expect(s.appendFile(sender: "bob", name: "a.txt", size: 10, messageId: 70, pending: true) == 1, "the same message keeps its number")
        #expect(s.lines.suffix(5) == ["bob: [file 1] a.txt (10 B) - /get 1 downloads it", "[work] carol: [file 2] b.bin (3.0 MiB)",
                                      "bob: [file 1] a.txt (10 B) - /get 1 downloads it", #"bob: [file 3] c (1 B) - saved as dl/c\x1b"#,
                                      "bob: [file 1] a.txt (10 B) - /get 1 downloads it"])
        #expect(s.feed(Array("/get 1\r/download  2 \r".utf8)) == [.download(messageId: 70, number: 1), .download(messageId: 71, number: 2)])
        let before = s.lines.count
        #expect(s.feed(Array("/get 4\r/get 0\r/get\r/get x\r/get 1 2\r/frobnicate \u{1B}x\r/quit now\r".utf8)) == [])
        #expect(Array(s.lines.suffix(from: before)) == [
            "!! no file 4: the files shown are 1 to 3", "!! no file 0: the files shown are 1 to 3",
            "!! usage: /get N (N: the number shown in [file N])", "!! usage: /get N (N: the number shown in [file N])",
            "!! usage: /get N (N: the number shown in [file N])",
            "!! unknown command /frobnicate (/help lists the commands; //text sends /text)",
            "!! unknown command /quit (/help lists the commands; //text sends /text)",
        ])
        #expect(s.feed(Array("//get 1\r/ \r".utf8)) == [.send("/get 1")])
        #expect(s.feed(Array("/quit\r".utf8)) == [.quit])
    }

    @Test("a file line escapes the peer's name; the status (a download's progress) is drawn in the rule, as wide as the window")
    func fileAndStatus() {
        var s = ChatScreen(title: "g", rows: 8, columns: 80)
        s.appendFile(sender: "b\u{1B}ob", name: "rep\u{1B}[31mort\u{202E}.bin", size: 1536, messageId: 9, pending: true)
        #expect(s.lines == [#"b\x1bob: [file 1] rep\x1b[31mort\u{202e}.bin (1.5 KiB) - /get 1 downloads it"#])
        s.status = ChatScreen.progress(name: "rep\u{1B}[31mort.bin", done: 512 * 1024, total: 2 << 20)
        #expect(s.status == #"downloading rep\x1b[31mort.bin 25% (512.0 KiB of 2.0 MiB)"#)
        let rows = String(decoding: s.render(), as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        #expect(rows.count == 8)
        let rule = String(rows[6])
        #expect(rule.hasPrefix(#"-- downloading rep\x1b[31mort.bin 25% (512.0 KiB of 2.0 MiB) --"#) && rule.count == 80, "\(rule)")
        s.status = nil
        #expect(String(decoding: s.render(), as: UTF8.self).contains("\r\n" + String(repeating: "-", count: 80) + "\r\n> "))
        #expect([0, 1023, 1024, 1536, 5 << 20, 3 << 30].map(ChatScreen.size) == ["0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 MiB", "3.0 GiB"])
        #expect(ChatScreen.progress(name: "e", done: 0, total: 0) == "downloading e 100% (0 B of 0 B)")
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
            switch Int.random(in: 0..<4, using: &rng) {
            case 0:
                s.append(sender: text, text: text, group: Bool.random(using: &rng) ? text : nil)
            case 1:
                s.appendFile(sender: text, name: text, size: UInt64.random(in: 0...UInt64.max, using: &rng), messageId: UInt64(raw.count),
                             pending: Bool.random(using: &rng), group: Bool.random(using: &rng) ? text : nil)
                s.status = Bool.random(using: &rng) ? ChatScreen.progress(name: text, done: UInt64(raw.count), total: 80) : nil
            default:
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
