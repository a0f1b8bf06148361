import ArgumentParser

/// The options qscp and qsftp pass on to the `qssh -s HOST sftp` they run: port, identity,
/// jump hosts, `-o` options, known_hosts and the client configuration file.
struct QSSHLinkOptions: ParsableArguments {
    @Option(name: .customShort("P"), help: ArgumentHelp("Port of qsshd.", valueName: "port"))
    var port: Int?

    @Option(name: .customShort("i"), help: ArgumentHelp("Identity (user key) file.", valueName: "file"))
    var identity: String?

    @Option(name: .customShort("J"), help: ArgumentHelp("Jump hosts (as qssh -J).", valueName: "hosts"))
    var jump: String?

    @Option(name: .customShort("o"), help: ArgumentHelp("Option passed to qssh (e.g. BatchMode=yes, StrictHostKeyChecking=accept-new, Transport=quic).", valueName: "option"))
    var sshOptions: [String] = []

    @Option(name: .long, help: ArgumentHelp("known_hosts file (passed to qssh).", valueName: "file"))
    var knownHosts: String?

    @Option(name: .customShort("F"), help: ArgumentHelp("Client configuration file (passed to qssh; default ~/.qssh/config).", valueName: "file"))
    var configFile: String?

    @Option(name: .long, help: ArgumentHelp("Stealth mode: the server's stealth line, its base64 part, or a file (passed to qssh).", valueName: "line|file"))
    var stealth: String?

    @Option(name: .long, help: ArgumentHelp("Cover traffic: off, random or constant (passed to qssh).", valueName: "mode"))
    var padding: String?

    @Flag(name: .long, help: "With --stealth: a printable first-flight prefix (passed to qssh).")
    var mimic = false

    /// The qssh arguments for these options (before `-s HOST sftp`).
    var qsshArguments: [String] {
        var argv: [String] = []
        if let configFile { argv += ["-F", configFile] }
        if let port { argv += ["-p", String(port)] }
        if let identity { argv += ["-i", identity] }
        if let knownHosts { argv += ["--known-hosts", knownHosts] }
        if let jump { argv += ["-J", jump] }
        if let stealth { argv += ["--stealth", stealth] }
        if let padding { argv += ["--padding", padding] }
        if mimic { argv += ["--mimic"] }
        for o in sshOptions { argv += ["-o", o] }
        return argv
    }
}
