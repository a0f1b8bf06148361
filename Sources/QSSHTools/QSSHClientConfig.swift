import Foundation
import QSSHSession

/// The client configuration file (`~/.qssh/config`, or `-F FILE`), in ssh_config style:
/// `Host pattern...` starts a block (`*`, `?` and `!` negation as in ssh), keywords below it
/// apply to matching destinations, and for each keyword the first value found wins (forwards
/// add up). The settings become options placed before the command line's, which therefore win.
public enum QSSHClientConfig {
    /// Why a configuration file was refused.
    public struct ConfigError: Error, CustomStringConvertible {
        public let description: String
    }

    enum Kind { case option(String), setting(String), forward(String), identity }

    static let keywords: [String: Kind] = [
        "hostname": .setting("HostName"), "port": .option("-p"), "user": .option("-l"), "identityfile": .identity,
        "proxyjump": .option("-J"), "proxycommand": .setting("ProxyCommand"), "batchmode": .setting("BatchMode"),
        "stricthostkeychecking": .setting("StrictHostKeyChecking"), "serveraliveinterval": .setting("ServerAliveInterval"),
        "serveralivecountmax": .setting("ServerAliveCountMax"), "exitonforwardfailure": .setting("ExitOnForwardFailure"),
        "hashknownhosts": .setting("HashKnownHosts"), "userknownhostsfile": .setting("UserKnownHostsFile"),
        "qnspknownhostsfile": .option("--known-hosts"), "localforward": .forward("-L"), "remoteforward": .forward("-R"),
        "dynamicforward": .forward("-D"), "stealth": .setting("Stealth"), "padding": .setting("Padding"), "mimic": .setting("Mimic"),
        "transport": .setting("Transport"), "forwardagent": .setting("ForwardAgent"), "passwordauthentication": .setting("PasswordAuthentication"),
    ]

    /// qssh options that take a value (to find the destination among the arguments).
    static let valued: Set<String> = ["-p", "-i", "-l", "-o", "-L", "-R", "-D", "-W", "-J", "-F", "--known-hosts", "--internal-notify-fd", "--stealth", "--padding"]

    /// The options the file gives for `host`.
    public static func arguments(from text: String, path: String, host: String) throws -> [String] {
        var args: [String] = []
        var seen = Set<String>()
        var applies = true  // lines before the first Host apply to every host
        for entry in ConfigLine.parse(text, path: path) {
            let keyword = entry.keyword.lowercased(), value = entry.value, at = entry.location
            if keyword == "host" {
                applies = matches(patterns: value, host: host)
                continue
            }
            guard let kind = keywords[keyword] else { throw ConfigError(description: "\(at): unknown keyword '\(entry.keyword)'") }
            guard !value.isEmpty else { throw ConfigError(description: "\(at): '\(entry.keyword)' needs a value") }
            if keyword == "transport", TunnelClient.Transport(rawValue: value.lowercased()) == nil {
                throw ConfigError(description: "\(at): Transport must be tcp, quic or auto, not '\(value)'")
            }
            guard applies else { continue }
            switch kind {
            case .forward(let option):
                // ssh_config writes "LocalForward [bind:]port host:hostport".
                args += [option, value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: ":")]
            case .option(let option):
                if seen.insert(keyword).inserted { args += [option, (value as NSString).expandingTildeInPath] }
            case .identity:
                if seen.insert(keyword).inserted { args += ["-i", (value as NSString).expandingTildeInPath] }
            case .setting(let name):
                if seen.insert(keyword).inserted { args += ["-o", "\(name)=\(value)"] }
            }
        }
        return args
    }

    /// `Host` patterns: any positive match and no negated match.
    static func matches(patterns: String, host: String) -> Bool {
        var matched = false
        for p in patterns.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }) {
            if p.hasPrefix("!") {
                if OpenSSHGlob.matches(String(p.dropFirst()), host) { return false }
            } else if OpenSSHGlob.matches(String(p), host) {
                matched = true
            }
        }
        return matched
    }

    /// The command line with the file's options for its destination put first. `-F FILE` names
    /// the file (`-F none`: no file); otherwise ~/.qssh/config is used when it exists.
    /// `forTunnel`: only what `qssh tunnel` understands is kept (Port, User, IdentityFile,
    /// QNSPKnownHostsFile, HostName, BatchMode, StrictHostKeyChecking, Transport).
    public static func expand(_ arguments: [String], forTunnel: Bool = false) throws -> [String] {
        var path = NSHomeDirectory() + "/.qssh/config"
        var explicit = false
        var host: String?
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a == "-F", i + 1 < arguments.count { path = arguments[i + 1]; explicit = true }
            if valued.contains(a) { i += 2; continue }
            if a == "--" { host = i + 1 < arguments.count ? arguments[i + 1] : nil; break }
            if !a.hasPrefix("-") { host = a; break }
            i += 1
        }
        guard path != "none", let destination = host else { return arguments }
        guard explicit || FileManager.default.fileExists(atPath: path) else { return arguments }
        // It can name a ProxyCommand: as ssh does, refuse a file others could have written.
        var st = stat()
        if stat(path, &st) == 0, (st.st_uid != getuid() && st.st_uid != 0) || st.st_mode & 0o022 != 0 {
            throw ConfigError(description: "bad owner or permissions on \(path) (must be yours and not writable by group or others)")
        }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError(description: "cannot read \(path): \(error.localizedDescription)")
        }
        let name = destination.split(separator: "@").last.map(String.init) ?? destination
        var extra = try self.arguments(from: text, path: path, host: name)
        if forTunnel {
            var kept: [String] = []
            var j = 0
            while j + 1 < extra.count {
                let (option, value) = (extra[j], extra[j + 1])
                let keep = ["-p", "-l", "-i", "--known-hosts"].contains(option)
                    || (option == "-o" && ["hostname=", "batchmode=", "stricthostkeychecking=", "stealth=", "padding=", "mimic=", "transport="].contains { value.lowercased().hasPrefix($0) })
                if keep { kept += [option, value] }
                j += 2
            }
            extra = kept
        }
        return extra + arguments
    }
}
