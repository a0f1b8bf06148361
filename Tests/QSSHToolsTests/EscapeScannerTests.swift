import QSSHSession
import Testing

@Suite("Escape sequences (~.)")
struct EscapeScannerTests {
    func run(_ chunks: [String]) -> (String, EscapeScanner.Action) {
        var s = EscapeScanner()
        var sent: [UInt8] = []
        for c in chunks {
            let (out, action) = s.feed(Array(c.utf8))
            sent += out
            if action == .disconnect { return (String(decoding: sent, as: UTF8.self), action) }
        }
        return (String(decoding: sent, as: UTF8.self), .none)
    }

    @Test("~. at the start or after a newline disconnects; bytes after it are not sent")
    func disconnect() {
        #expect(run(["~.rest"]) == ("", .disconnect))
        #expect(run(["ls\r~.", "more"]) == ("ls\r", .disconnect))
        #expect(run(["ls\r~", ".x"]) == ("ls\r", .disconnect))  // split across reads
    }

    @Test("~~ sends one tilde, ~ with anything else sends both, a tilde mid-line is plain")
    func passThrough() {
        #expect(run(["~~x"]) == ("~x", .none))
        #expect(run(["~x"]) == ("~x", .none))
        #expect(run(["a~.b"]) == ("a~.b", .none))
        #expect(run(["\n~~.\n~."]) == ("\n~.\n", .disconnect))
    }
}
