import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QSSHTools

struct SafetyNumber: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "safety-number",
                                                    abstract: "Print the number you and USER compare (in person or on a call).")
    @OptionGroup var options: QPQOptions
    @Argument var user: String
    func run() throws {
        let user = self.user
        let digits = try withMessenger(options, save: false) { m, _ in try await m.safetyNumber(with: user) }
        print(QPQSafetyNumber.formatted(digits))
    }
}
