import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QSSHTools

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List this account's devices.")
    @OptionGroup var options: QPQOptions

    func run() throws {
        let answer = try withMessenger(options, save: false) { _, conn in try await conn.expect(.listDevices) }
        guard case .devices(let devices) = answer else { throw ToolError("unexpected answer \(answer)") }
        for d in devices {
            let fp = (try? SignatureScheme.PublicKey(rawRepresentation: d.identityKey)).map { UserPublicKey(signing: $0).fingerprint } ?? "?"
            print("\(d.deviceId)\t\(d.name)\t\(fp)\(d.isCurrent ? "\t(this device)" : "")")
        }
    }
}
