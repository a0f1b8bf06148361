import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QSSHTools

struct Disappear: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make the group's new messages disappear after DURATION (30s, 10m, 1h, 7d, or off).")
    @OptionGroup var options: QPQOptions
    @Argument var group: String
    @Argument var duration: String

    static func seconds(_ text: String) -> UInt32? {
        if text == "off" || text == "0" { return 0 }
        guard let unit = text.last, let n = UInt32(text.dropLast()), n > 0 else { return nil }
        let factor: UInt32
        switch unit {
        case "s": factor = 1
        case "m": factor = 60
        case "h": factor = 3600
        case "d": factor = 86400
        default: return nil
        }
        let (v, overflow) = n.multipliedReportingOverflow(by: factor)
        return overflow || v > QPQLimits.maxDisappearSeconds ? nil : v
    }

    func run() throws {
        guard let seconds = Self.seconds(duration) else { throw ToolError("DURATION is a number with s, m, h or d (at most 365d), or off") }
        let group = self.group
        try withMessenger(options) { m, _ in
            _ = try await m.receive()
            try await m.setDisappearing(group, seconds: seconds)
        }
        print(seconds == 0 ? "messages in \(group) no longer disappear" : "new messages in \(group) disappear after \(duration)")
    }
}
