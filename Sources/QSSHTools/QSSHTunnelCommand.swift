import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSPNIO
import QSSHSession

/// `qssh tunnel`: opens a QNSP session to qsshd and joins stdin/stdout to the SSH-2 server
/// inside it, so a stock OpenSSH client can use it as its ProxyCommand.
public struct QSSHTunnelCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "qssh tunnel",
        abstract: "Join stdin/stdout to the SSH-2 server inside a QNSP tunnel (for OpenSSH's ProxyCommand).",
        discussion: """
            The QNSP handshake authenticates both ends (your ML-DSA-65 key, the host key
            pinned in ~/.qssh/known_hosts); OpenSSH then speaks SSH-2 to qsshd's inner
            server, which logs it in as the QNSP-authenticated user (method 'none').

            ~/.ssh/config:
              Host *.pq
                ProxyCommand qssh tunnel -p 22222 %r@%h
                # the inner host key is stable per qsshd host key; the tunnel already checked the host
            Then: ssh alice@server.pq, sftp alice@server.pq, scp file alice@server.pq:
            (the .pq suffix is removed before connecting).

            --plain-ssh instead joins stdin/stdout to one QUIC stream with ALPN ssh,
            which 'qsshd --bridge' hands to its sshd as plain SSH-2. There is no QNSP
            on that path: no qssh key, no ~/.qssh/known_hosts, and only sshd's own key
            exchange and host key (checked by ssh) protect the session, so it is
            post-quantum only if sshd's key exchange is (sntrup761x25519, mlkem768x25519).
              ProxyCommand qssh tunnel --plain-ssh -p %p %h
            """)

    @OptionGroup var connection: ClientOptions

    @Option(name: .customShort("o"), help: "BatchMode=yes|no, StrictHostKeyChecking=accept-new|yes, HostName=NAME, Stealth=LINE|FILE, Transport=tcp|quic|auto.")
    var sshOptions: [String] = []

    @Option(name: .customShort("F"), help: ArgumentHelp("Client configuration file (default ~/.qssh/config; 'none' for none).", valueName: "file"))
    var configFile: String?

    @Flag(name: .shortAndLong, help: "Print connection details to stderr.")
    var verbose = false

    @Flag(name: .long, help: ArgumentHelp(
        "Plain SSH-2 over QUIC (ALPN ssh, served by 'qsshd --bridge'): no QNSP, no qssh key or known_hosts; sshd's own key exchange and host key protect it. Takes -p, -v and HostName only."))
    var plainSSH = false

    @Argument(help: "[user@]host (a trailing .pq is removed)")
    var destination: String

    public init() {}

    public func validate() throws {
        if plainSSH {
            let allowed = sshOptions.allSatisfy { option in
                let o = option.lowercased().replacingOccurrences(of: " ", with: "")
                return o.hasPrefix("hostname=") || o == "transport=quic"
            }
            if !allowed {
                throw ValidationError("--plain-ssh runs plain SSH-2 over QUIC: only -o HostName= (and Transport=quic) apply, not \(sshOptions.joined(separator: " "))")
            }
        }
    }

    public func run() throws {
        var batch = false, acceptNew = false
        var hostName: String?
        var stealth: String?
        var padding: String?
        var mimic = false
        var transport = TunnelClient.Transport.tcp
        for option in sshOptions {
            switch option.lowercased().replacingOccurrences(of: " ", with: "") {
            case "batchmode=yes": batch = true
            case "batchmode=no": batch = false
            case "stricthostkeychecking=accept-new": acceptNew = true
            case "stricthostkeychecking=yes": acceptNew = false
            case let o where o.hasPrefix("hostname="): hostName = String(option.split(separator: "=", maxSplits: 1).last ?? "")
            case "mimic=yes": mimic = true
            case "mimic=no": mimic = false
            case let o where o.hasPrefix("padding="): padding = String(option.split(separator: "=", maxSplits: 1).last ?? "")
            case let o where o.hasPrefix("stealth="): stealth = String(option.split(separator: "=", maxSplits: 1).last ?? "")
            case let o where o.hasPrefix("transport="):
                guard let t = TunnelClient.Transport(rawValue: String(o.dropFirst("transport=".count))) else {
                    throw ToolError("Transport must be tcp, quic or auto, not '\(option.split(separator: "=", maxSplits: 1).last ?? "")'")
                }
                transport = t
            default: throw ToolError("unsupported option -o \(option)")
            }
        }
        var (user, host) = try connection.resolve(destination)
        if let hostName { host = hostName } else if host.hasSuffix(".pq") { host.removeLast(3) }
        guard !host.isEmpty else { throw ToolError("bad destination '\(destination)'") }
        if plainSSH {
            if try PlainSSHTunnel.run(host: host, port: connection.port, verbose: verbose) != 0 { throw ExitCode(255) }
            return
        }
        var options = QNSPBootstrap.Options()
        options.keepalive = .init(interval: .seconds(30), maxMissed: 3)
        options.handshakeTimeout = .seconds(30)
        if let padding { options.padding = try StealthArgument.padding(padding) }
        if let stealth, !["none", "no", ""].contains(stealth.lowercased()) {
            options.stealth = try StealthArgument.clientOptions(stealth, mimic: mimic)
        }
        // stdin is OpenSSH's pipe: a first-contact question goes to /dev/tty (or is refused in batch mode).
        var client = TunnelClient(
            host: host, port: connection.port, identityPath: connection.identity, user: user, knownHostsPath: connection.knownHosts,
            acceptNew: acceptNew, batch: batch, verbose: verbose, options: options, toolName: "qssh tunnel")
        client.transport = transport
        if try client.runStdio() != 0 { throw ExitCode(255) }
    }
}
