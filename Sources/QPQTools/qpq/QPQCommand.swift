import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QSSHTools

/// `qpq`: the messenger's command line (docs/messaging.md).
package struct QPQCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "qpq",
        abstract: "Post-quantum group messenger (MLS over qpq/1 inside QNSP).",
        discussion: """
            The password is read from QPQ_PASSWORD or asked on the terminal. It logs in with OPAQUE
            (the server never sees it) and also unlocks the local store (Argon2id, AES-256-GCM).
            """,
        subcommands: [Register.self, Login.self, Devices.self, GroupCommand.self, Send.self, SendFile.self, Recv.self, History.self, SafetyNumber.self, Disappear.self, Chat.self]
    )
    package init() {}
}
