import ArgumentParser
import QNSP
import QNSPCrypto

import Foundation

/// `qssh-keygen`: creates and inspects QNSP user and host keys.
public struct KeygenCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "qssh-keygen",
        abstract: "Generate and inspect post-quantum QNSP keys.",
        discussion: """
            Key types:
              user   an ML-DSA-65 signing key; its public line goes into authorized_keys (default)
              host   an X-Wing (ML-KEM-768 + X25519) key and an ML-DSA-65 key for a server

            Private keys are written with mode 0600 and refused when group or others can read
            them. With -N, the key's seeds are sealed with AES-256-GCM under a scrypt key
            (memory-hard; 128 MiB by default). The public key is also written to FILE.pub.

            Examples:
              qssh-keygen -t user -f ~/.qssh/id_mldsa65 -C alice@laptop
              qssh-keygen -t host -f /etc/qssh/host_key -N ''
              qssh-keygen -l -f ~/.qssh/id_mldsa65.pub
              qssh-keygen -y -f ~/.qssh/id_mldsa65 > id.pub

            Certificates (docs/protocol.md §7.7; the CA is a user key file):
              qssh-keygen -s ca -I alice@corp -n alice,admin -V +52w -z 7 -O no-pty id_mldsa65.pub
              qssh-keygen -s ca -I web1 -h -n web1.example.com -V always:forever host_key.pub
              qssh-keygen -L -f id_mldsa65-cert.pub
            -V: always:forever (default), +52w, -5m:+1h, 20261203:20271203 or 20261203101500 (UTC).
            -O: force-command=CMD, source-address=CIDR[,CIDR...], no-port-forwarding, no-pty,
                no-agent-forwarding (user certificates only).
            """,
        helpNames: [.long])

    @Option(name: .customShort("t"), help: "Key type: user (ML-DSA-65) or host (X-Wing + ML-DSA-65).")
    var type: String = "user"

    @Option(name: .customShort("f"), help: "Key file (default: ~/.qssh/id_mldsa65 for user keys, ./qnsp_host_key for host keys).")
    var file: String?

    @Option(name: .customShort("N"), help: "New passphrase ('' for none). Prompted on a terminal when omitted.")
    var newPassphrase: String?

    @Option(name: .customShort("P"), help: "Passphrase of an existing key (for -y).")
    var passphrase: String?

    @Option(name: .customShort("C"), help: "Comment stored with the key (default: user@host).")
    var comment: String?

    @Option(name: .customShort("a"), help: "scrypt cost as log2(N), 14-20 (default 17).")
    var kdfCost: UInt8 = PrivateKeyFile.ScryptParameters.default.logN

    @Flag(name: .customShort("l"), help: "Show the fingerprint of the key in FILE (public or private).")
    var fingerprint = false

    @Flag(name: .customShort("y"), help: "Read a private key FILE and print its public key line.")
    var printPublic = false

    @Flag(name: .customShort("q"), help: "Quiet: print nothing when generating.")
    var quiet = false

    @Flag(name: .long, help: "Print the stealth line of the host key in FILE (private; -P for its passphrase), for clients' --stealth (docs/protocol.md §9).")
    var stealthLine = false

    @Option(name: .long, help: "Extra entropy source (file or device, e.g. a QRNG) mixed into the generator.")
    var entropyFile: String?

    @Option(name: .customShort("s"), help: "Sign the given public keys with this CA key file (writes KEY-cert.pub).")
    var caKey: String?

    @Option(name: .customShort("I"), help: "Key id of the certificate (required with -s).")
    var keyID: String?

    @Option(name: .customShort("n"), help: "Principals (user or host names), comma-separated (required with -s).")
    var principals: String?

    @Option(name: .customShort("V"), parsing: .unconditional, help: "Validity interval (see below).")
    var validity: String = "always:forever"

    @Option(name: .customShort("z"), help: "Serial number of the certificate.")
    var serial: UInt64 = 0

    @Option(name: .customShort("O"), help: "Certificate option (repeatable, see below).")
    var certificateOptions: [String] = []

    @Flag(name: .customShort("h"), help: "Make a host certificate (with -s).")
    var hostCertificate = false

    @Flag(name: .customShort("L"), help: "Print the certificate in FILE.")
    var listCertificate = false

    @Argument(help: "Public key files to certify (with -s).")
    var certify: [String] = []

    public init() {}

    public func run() throws {
        do {
            if caKey != nil { try signCertificates(); return }
            if listCertificate { try showCertificate(); return }
            if fingerprint { try showFingerprint(); return }
            if printPublic { try showPublicKey(); return }
            if stealthLine { try showStealthLine(); return }
            try generate()
        } catch let e as QNSPCryptoError {
            throw ToolError(e.description)
        }
    }

    private func requireFile() throws -> String {
        guard let file else { throw ToolError("-f FILE is required") }
        return file
    }

    private func showFingerprint() throws {
        let path = try requireFile()
        let text = try KeyFileIO.readText(path: path, limit: 1 << 16)
        let line: PublicKeyLine
        if text.contains(PrivateKeyFile.beginLine) {
            line = try PrivateKeyFile.readHeader(text).publicKeyLine
        } else {
            guard let first = text.split(whereSeparator: \.isNewline).first(where: { !$0.isEmpty && !$0.hasPrefix("#") }) else {
                throw ToolError("\(path): no key found")
            }
            line = try PublicKeyLine(parsing: String(first))
        }
        print(Self.fingerprintLine(line))
    }

    static func fingerprintLine(_ line: PublicKeyLine) -> String {
        let kind: String
        switch line {
        case .user: kind = "ML-DSA-65"
        case .host: kind = "X-WING+ML-DSA-65"
        }
        return "192 \(line.fingerprint) \(line.comment.isEmpty ? "no comment" : line.comment) (\(kind))"
    }

    private func showPublicKey() throws {
        let path = try requireFile()
        let text = try KeyFileIO.readPrivateKey(path: path)
        let header = try PrivateKeyFile.readHeader(text)
        if header.isEncrypted, let passphrase {
            _ = try PrivateKeyFile.decode(text, passphrase: passphrase)  // verifies the passphrase and the key
        } else if !header.isEncrypted {
            _ = try PrivateKeyFile.decode(text)  // checks public and private halves match
        }
        print(header.publicKeyLine.text)
    }

    private func showStealthLine() throws {
        let path = try requireFile()
        let text = try KeyFileIO.readPrivateKey(path: path)
        let header = try PrivateKeyFile.readHeader(text)
        var pass = passphrase
        if header.isEncrypted, pass == nil {
            guard Terminal.stdinIsTTY, let p = Terminal.prompt("Enter passphrase for key '\(path)': ", secret: true) else {
                throw ToolError("\(path) is passphrase-protected: give -P")
            }
            pass = p
        }
        guard case .host(let host) = try PrivateKeyFile.decode(text, passphrase: header.isEncrypted ? pass : nil) else {
            throw ToolError("\(path) is not a host key (stealth lines belong to host keys)")
        }
        print(StealthLine(hostKey: host).description)
    }

    private func generate() throws {
        let kind: PrivateKeyFile.Kind
        switch type.lowercased() {
        case "user", "mldsa65", "ml-dsa-65", UserPublicKey.keyType: kind = .user
        case "host", "xwing-mldsa65", HostPublicKey.keyType: kind = .host
        default: throw ToolError("unknown key type '\(type)' (use 'user' or 'host')")
        }
        guard (14...PrivateKeyFile.ScryptParameters.maxLogN).contains(kdfCost) else {
            throw ToolError("-a must be between 14 and \(PrivateKeyFile.ScryptParameters.maxLogN)")
        }
        let path = file ?? (kind == .user ? Self.defaultUserKeyPath() : "qnsp_host_key")
        if KeyFileIO.exists(path) { throw ToolError("\(path) already exists; refusing to overwrite it (remove it first)") }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        var pass = newPassphrase
        if pass == nil, Terminal.stdinIsTTY {
            let first = Terminal.prompt("Enter passphrase (empty for no passphrase): ", secret: true) ?? ""
            let second = Terminal.prompt("Enter same passphrase again: ", secret: true) ?? ""
            guard first == second else { throw ToolError("passphrases do not match") }
            pass = first
        }
        let random = SecureRandom(extraSourcePath: entropyFile)
        let note = comment ?? Self.defaultComment()
        if !quiet { print("Generating a \(kind == .user ? UserPublicKey.keyType : HostPublicKey.keyType) \(kind == .user ? "user" : "host") key pair.") }
        let contents: PrivateKeyFile.Contents = kind == .user
            ? .user(try .generate(comment: note, using: random))
            : .host(try .generate(comment: note, using: random))
        let text = try PrivateKeyFile.encode(
            contents, passphrase: pass, scrypt: .init(logN: kdfCost, r: 8, p: 1), random: random)
        try KeyFileIO.writePrivateKey(text, path: path)
        try KeyFileIO.writePublicKey(contents.publicKeyLine.text + "\n", path: path + ".pub")
        if !quiet {
            print("Your identification has been saved in \(path)")
            print("Your public key has been saved in \(path).pub")
            print("The key fingerprint is:")
            print("\(contents.publicKeyLine.fingerprint) \(note)")
        }
    }

    static func defaultUserKeyPath() -> String {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "."
        return home + "/.qssh/id_mldsa65"
    }

    static func defaultComment() -> String {
        let user = ProcessInfo.processInfo.environment["USER"] ?? "user"
        return "\(user)@\(ProcessInfo.processInfo.hostName)"
    }
}

/// A user-facing error: printed as `tool: message`, exit status 1 (255 for connection tools).
public struct ToolError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
