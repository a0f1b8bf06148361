import ArgumentParser
import Foundation
import QNSPCrypto
import QSSHSession

/// The connection options every client mode shares (`qssh`, `qssh tunnel`): port, identity,
/// login name and known_hosts file, and the `[user@]host` destination they apply to.
struct ClientOptions: ParsableArguments {
    @Option(name: .customShort("p"), help: ArgumentHelp("Port of qsshd.", valueName: "port"))
    var port: Int = 22222

    static let defaultIdentity = NSHomeDirectory() + "/.qssh/id_mldsa65"
    static let defaultKnownHosts = NSHomeDirectory() + "/.qssh/known_hosts"

    @Option(name: .customShort("i"), help: ArgumentHelp("Identity (user key) file.", valueName: "file"))
    var identity: String = ClientOptions.defaultIdentity

    @Option(name: .customShort("l"), help: ArgumentHelp("User to log in as.", valueName: "user"))
    var loginName: String?

    @Option(name: .long, help: ArgumentHelp("known_hosts file.", valueName: "file"))
    var knownHosts: String = ClientOptions.defaultKnownHosts

    /// Splits `[user@]host`; -l wins over the user part, then $USER, then the account name.
    func resolve(_ destination: String) throws -> (user: String, host: String) {
        var host = destination
        var user = loginName ?? ProcessInfo.processInfo.environment["USER"] ?? SessionUser.current()?.name ?? "root"
        if let at = destination.lastIndex(of: "@") {
            if loginName == nil { user = String(destination[..<at]) }
            host = String(destination[destination.index(after: at)...])
        }
        guard !host.isEmpty, !user.isEmpty, !host.hasPrefix("-") else { throw ToolError("bad destination '\(destination)'") }
        guard !PrintableText.containsControlCharacters(user), !PrintableText.containsControlCharacters(host) else {
            throw ToolError("bad destination '\(PrintableText.escaped(destination))': user and host names cannot contain control characters")
        }
        guard (1...65535).contains(port) else { throw ToolError("bad port \(port)") }
        return (user, host)
    }
}
