import ArgumentParser
import Crypto
import Foundation
import QNSPCrypto
import QSSHAgent
import QSSHSession

/// `qssh-add`: adds QNSP user keys to qssh-agent, lists and removes them, locks the agent.
public struct AddCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "qssh-add",
        abstract: "Add QNSP user keys to qssh-agent, list or remove them, lock or unlock the agent.",
        discussion: """
            With no file, adds ~/.qssh/id_mldsa65. The agent is the one QSSH_AUTH_SOCK names.
            Exit status: 0 on success, 1 when the operation failed, 2 when the agent cannot be reached.
            """
    )

    @Flag(name: .customShort("l"), help: "List fingerprints of the keys the agent holds.")
    var list = false

    @Flag(name: .customShort("L"), help: "List public key lines of the keys the agent holds.")
    var listPublic = false

    @Flag(name: .customShort("d"), help: "Remove the given keys (their .pub files suffice).")
    var delete = false

    @Flag(name: .customShort("D"), help: "Remove every key.")
    var deleteAll = false

    @Option(name: .customShort("t"), help: "Lifetime of added keys (seconds, or e.g. 10m, 1h30m).")
    var lifetime: String?

    @Flag(name: .customShort("c"), help: "Ask for confirmation (through SSH_ASKPASS) each time an added key is used.")
    var confirm = false

    @Flag(name: .customShort("x"), help: "Lock the agent with a password.")
    var lock = false

    @Flag(name: .customShort("X"), help: "Unlock the agent.")
    var unlock = false

    @Flag(name: .customShort("q"), help: "Quiet.")
    var quiet = false

    @Argument(help: "Key files.")
    var files: [String] = []

    public init() {}

    public func validate() throws {
        let modes = [list, listPublic, delete, deleteAll, lock, unlock].filter { $0 }.count
        if modes > 1 { throw ValidationError("-l, -L, -d, -D, -x and -X are mutually exclusive") }
        if let lifetime, AgentLifetime.parse(lifetime) == nil {
            throw ValidationError("invalid lifetime '\(lifetime)'")
        }
        if modes == 1 && (lifetime != nil || confirm) { throw ValidationError("-t and -c apply when adding keys") }
        if (list || listPublic || deleteAll || lock || unlock) && !files.isEmpty {
            throw ValidationError("no key files with -l, -L, -D, -x or -X")
        }
    }

    public func run() throws {
        guard let agent = AgentClient.fromEnvironment() else {
            Terminal.warn(
                "Could not open a connection to your authentication agent (\(AgentClient.socketVariable) is not set)."
            )
            throw ExitCode(2)
        }
        do {
            try run(agent)
        } catch AgentError.transport(let why) {
            Terminal.warn("Could not open a connection to your authentication agent: \(why)")
            throw ExitCode(2)
        }
    }

    private func run(_ agent: AgentClient) throws {
        if list || listPublic {
            let held = try agent.identities()
            if held.isEmpty {
                print("The agent has no identities.")
                throw ExitCode(1)
            }
            for (identity, _) in held {
                let comment = PrintableText.escaped(utf8: Array(identity.comment.utf8))
                guard let (type, raw) = try? AgentKeyFormat.parse(blob: identity.keyBlob) else {
                    print("(a key of a type qssh-add does not know) \(comment)")
                    continue
                }
                if listPublic {
                    print(
                        "\(type.rawValue) \(Base64.encode(type == .ed25519 ? identity.keyBlob : raw))\(comment.isEmpty ? "" : " " + comment)"
                    )
                } else {
                    let size = type == .ed25519 ? "256" : "192"
                    let name = type == .ed25519 ? "ED25519" : "ML-DSA-65"
                    let fingerprint = AgentKeyFormat.fingerprint(type: type, publicKey: raw)
                    print("\(size) \(fingerprint) \(comment.isEmpty ? "(no comment)" : comment) (\(name))")
                }
            }
            return
        }
        if deleteAll {
            try report(agent, .removeAll, ok: "All identities removed.", failed: "Failed to remove all identities.")
            return
        }
        if lock || unlock {
            guard let password = Passphrase.ask(lock ? "Enter lock password: " : "Enter lock password: ") else {
                throw ToolError("no password given")
            }
            if lock {
                guard Passphrase.ask("Again: ") == password else { throw ToolError("Passwords do not match.") }
                try report(
                    agent,
                    .lock(passphrase: Array(password.utf8)),
                    ok: "Agent locked.",
                    failed: "Failed to lock agent."
                )
            } else {
                try report(
                    agent,
                    .unlock(passphrase: Array(password.utf8)),
                    ok: "Agent unlocked.",
                    failed: "Failed to unlock agent."
                )
            }
            return
        }
        let paths = files.isEmpty ? [KeygenCommand.defaultUserKeyPath()] : files
        var failed = false
        for path in paths {
            do {
                if delete {
                    let blob = try Self.keyBlob(of: path)
                    try agent.perform(.remove(keyBlob: blob))
                    if !quiet { Terminal.warn("Identity removed: \(path)") }
                } else if let text = try? KeyFileIO.readPrivateKey(path: path),
                    text.contains("BEGIN OPENSSH PRIVATE KEY")
                {
                    let key = try Self.loadEd25519(text, path: path)
                    let constraints = AgentConstraints(
                        lifetime: lifetime.flatMap(AgentLifetime.parse),
                        confirm: confirm
                    )
                    let comment = Self.opensshComment(path) ?? path
                    try agent.add(ed25519: key, comment: comment, constraints: constraints)
                    if !quiet {
                        let blob = AgentKeyFormat.keyBlob(
                            type: .ed25519,
                            publicKey: Array(key.publicKey.rawRepresentation)
                        )
                        Terminal.warn("Identity added: \(path) (\(Fingerprint.sha256(blob)))")
                    }
                } else {
                    let pair = try ClientIdentity.load(path: path, interactive: true)
                    let constraints = AgentConstraints(
                        lifetime: lifetime.flatMap(AgentLifetime.parse),
                        confirm: confirm
                    )
                    try agent.add(pair, constraints: constraints)
                    if !quiet {
                        Terminal.warn("Identity added: \(path) (\(pair.publicKey.fingerprint))")
                        if let seconds = constraints.lifetime { Terminal.warn("Lifetime set to \(seconds) seconds") }
                        if confirm { Terminal.warn("The user must confirm each use of the key") }
                    }
                }
            } catch AgentError.refused {
                Terminal.warn(
                    delete
                        ? "Could not remove identity \"\(path)\": agent refused operation"
                        : "Could not add identity \"\(path)\": agent refused operation"
                )
                failed = true
            } catch let e as AgentError {
                if case .transport = e { throw e }
                Terminal.warn("\(path): \(e)")
                failed = true
            } catch {
                Terminal.warn("\(path): \(error)")
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }

    private func report(_ agent: AgentClient, _ request: AgentRequest, ok: String, failed: String) throws {
        do {
            try agent.perform(request)
            if !quiet { Terminal.warn(ok) }
        } catch AgentError.refused {
            Terminal.warn(failed)
            throw ExitCode(1)
        }
    }

    static func loadEd25519(_ text: String, path: String) throws -> Curve25519.Signing.PrivateKey {
        do {
            return try OpenSSHPrivateKey.parseEd25519(text)
        } catch .encrypted {
            guard let passphrase = Passphrase.ask("Enter passphrase for \(path): ") else {
                throw ToolError("\(path): no passphrase given")
            }
            return try OpenSSHPrivateKey.parseEd25519(text, passphrase: passphrase)
        }
    }

    /// The comment of an OpenSSH key, from its .pub file.
    static func opensshComment(_ path: String) -> String? {
        guard let text = try? KeyFileIO.readText(path: path + ".pub", limit: 1 << 16) else { return nil }
        let parts = text.split(separator: "\n").first?.split(separator: " ", maxSplits: 2) ?? []
        return parts.count == 3 ? String(parts[2]) : nil
    }

    /// The agent key blob for a key file: an OpenSSH `ssh-ed25519` .pub line (whose base64 is
    /// the blob), else our public key as below.
    static func keyBlob(of path: String) throws -> [UInt8] {
        if let text = try? KeyFileIO.readText(path: path + ".pub", limit: 1 << 16) {
            let parts = text.split(separator: "\n").first?.split(separator: " ") ?? []
            if parts.count >= 2, parts[0] == "ssh-ed25519", let blob = Base64.decode(String(parts[1])),
                (try? AgentKeyFormat.parse(blob: blob)) != nil
            {
                return blob
            }
        }
        return AgentKeyFormat.keyBlob(try publicKey(of: path))
    }

    /// The public key of a key file: FILE.pub, FILE itself as a public line, or the clear
    /// header of a private key file.
    static func publicKey(of path: String) throws -> UserPublicKey {
        for candidate in [path + ".pub", path] {
            guard let text = try? KeyFileIO.readText(path: candidate, limit: 1 << 16) else { continue }
            if let line = text.split(separator: "\n").first,
                case .user(let key, _)? = try? PublicKeyLine(parsing: String(line))
            {
                return key
            }
        }
        let header = try PrivateKeyFile.readHeader(try KeyFileIO.readPrivateKey(path: path))
        guard case .user(let key, _) = header.publicKeyLine else { throw ToolError("\(path) is not a user key") }
        return key
    }
}
