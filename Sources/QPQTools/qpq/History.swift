import ArgumentParser
import Foundation
import QNSPCrypto
import QPQClient
import QSSHTools

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the messages kept in the local store (received and sent by this device), oldest first; no network.")
    @OptionGroup var options: QPQOptions
    @Argument(help: "Only this group.") var group: String?
    @Option(name: .long, help: "At most this many (the newest).") var last: Int = 1000

    func run() throws {
        let password = try options.password()
        let state = try options.loadState(password)
        let shown = state.messages.filter { group == nil || $0.group == group }.suffix(max(0, last))
        var out = ""
        for m in shown {
            var line = "[\(m.group)] \(m.sender): \(m.text)"
            if let saved = m.file?.savedAs, m.own != true { line += " -> \(saved)" }
            out += PrintableText.escaped(line) + "\n"
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
