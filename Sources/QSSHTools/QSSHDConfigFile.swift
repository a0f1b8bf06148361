import Foundation

/// qsshd's configuration file (`-f FILE`), in sshd_config style: one `Keyword value` per line
/// (or `Keyword=value`), `#` comments, keywords case-insensitive. Each keyword stands for a
/// command-line option; the file's options come first, so the command line overrides them.
public enum QSSHDConfigFile {
    /// Why a configuration file was refused.
    public struct ConfigError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Keyword → option, and whether it takes a value or is a yes/no switch (with the option
    /// used for "yes", or for "no" when `negated`).
    enum Kind { case value(String), yes(String), no(String), verbosity, rootLogin }

    static let keywords: [String: Kind] = [
        "port": .value("-p"), "listenaddress": .value("-l"), "hostkey": .value("-h"),
        "trustedusercakeys": .value("--trusted-user-ca-keys"), "hostcertificate": .value("--host-certificate"), "revokedkeys": .value("--revoked-keys"),
        "authorizedprincipalsfile": .value("--authorized-principals-file"),
        "authorizedkeysfile": .value("--authorized-keys"), "clientaliveinterval": .value("--keepalive"),
        "clientalivecountmax": .value("--keepalive-max"), "maxconnections": .value("--max-connections"),
        "logingracetime": .value("--login-grace-time"), "idletimeout": .value("--idle-timeout"), "auditlog": .value("--audit-log"),
        "permitopen": .value("--permit-open"), "permitlisten": .value("--permit-listen"),
        "gatewayports": .yes("--gateway-ports"), "allowtcpforwarding": .no("--no-forwarding"), "allowagentforwarding": .no("--no-agent-forwarding"),
        "bridge": .value("--bridge"), "sftproot": .value("--sftp-root"), "sftp": .no("--no-sftp"),
        "loglevel": .verbosity, "logfile": .value("--log-file"), "pidfile": .value("--pid-file"), "stealth": .yes("--stealth"), "padding": .value("--padding"), "mimic": .yes("--mimic"),
        "passwordauthentication": .yes("--password-auth"), "pamservicename": .value("--pam-service"),
        "permitrootlogin": .rootLogin,
    ]

    /// The options `text` stands for.
    public static func arguments(from text: String, path: String) throws -> [String] {
        var args: [String] = []
        for entry in ConfigLine.parse(text, path: path) {
            let (keyword, value, at) = (entry.keyword, entry.value, entry.location)
            guard let kind = keywords[keyword.lowercased()] else {
                throw ConfigError(description: "\(at): unknown keyword '\(keyword)' (known: \(keywords.keys.sorted().joined(separator: ", ")))")
            }
            guard !value.isEmpty else { throw ConfigError(description: "\(at): '\(keyword)' needs a value") }
            switch kind {
            case .value(let option):
                // Lists may be written with spaces, as in sshd_config (PermitOpen a:1 b:2).
                let joined = option == "--permit-open" || option == "--permit-listen"
                    ? value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: ",") : value
                args += [option, joined]
            case .yes(let option), .no(let option):
                let yes: Bool
                switch value.lowercased() {
                case "yes": yes = true
                case "no": yes = false
                default: throw ConfigError(description: "\(at): '\(keyword)' must be yes or no, not '\(value)'")
                }
                if case .yes = kind, yes { args.append(option) }
                if case .no = kind, !yes { args.append(option) }
            case .rootLogin:
                switch value.lowercased() {
                case "yes": args.append("--permit-root-password")
                case "prohibit-password", "without-password": break  // the default: keys and certificates only
                case "no": args.append("--no-root-login")
                case "forced-commands-only":
                    throw ConfigError(description: "\(at): PermitRootLogin forced-commands-only is not supported (use a certificate with force-command, or 'no')")
                default:
                    throw ConfigError(description: "\(at): PermitRootLogin must be yes, prohibit-password or no, not '\(value)'")
                }
            case .verbosity:
                switch value.uppercased() {
                case "QUIET", "FATAL", "ERROR", "INFO": break
                case "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3": args.append("-v")
                default: throw ConfigError(description: "\(at): LogLevel must be INFO or VERBOSE, not '\(value)'")
                }
            }
        }
        return args
    }

    /// The command line with the options of `-f FILE` (if any) put in front.
    public static func expand(_ arguments: [String]) throws -> [String] {
        guard let i = arguments.firstIndex(of: "-f") else { return arguments }
        guard i + 1 < arguments.count else { throw ConfigError(description: "-f needs a file name") }
        let path = arguments[i + 1]
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError(description: "cannot read \(path): \(error.localizedDescription)")
        }
        return try self.arguments(from: text, path: path) + arguments
    }
}
