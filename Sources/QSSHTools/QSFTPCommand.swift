import ArgumentParser
import Foundation
import QSFTP
import QSSHSession

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `qsftp`: an interactive (or batch) SFTP client over a QNSP tunnel (qssh's client, in process), like OpenSSH's sftp.
public struct QSFTPCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "qsftp",
        abstract: "Interactive post-quantum file transfer: SFTP over a QNSP tunnel, like sftp.",
        discussion: """
            Commands (paths with spaces in quotes):
              ls [-l] [path]   cd path   pwd   lcd path   lpwd   lls [path]
              get remote [local]   put local [remote]   (temporary name, then rename)
              mkdir path   rmdir path   rm path   rename old new   ln -s target link
              chmod mode path   df [path]   help   exit | quit | bye
            With -b FILE the commands come from FILE (- for stdin) and the first failing
            one ends qsftp with status 1; a command prefixed with '-' may fail without
            ending the batch.
            """)

    @OptionGroup var link: QSSHLinkOptions

    @Option(name: .customShort("b"), help: ArgumentHelp("Read commands from this file (- for stdin); stop at the first error.", valueName: "file"))
    var batch: String?

    @Argument(help: "[user@]host[:dir]")
    var destination: String

    public init() {}

    public func run() throws {
        let target = RemotePath.parse(destination.contains(":") ? destination : destination + ":") ?? RemotePath(user: nil, host: destination, path: ".")
        var copier = try QSCPCommand.parse(["-q", "-p", "x", "y"])
        copier.link = link
        copier.preserve = false
        let (client, qssh) = try copier.connect(target)
        defer {
            client.close()
            _ = qssh.waitForExit()
        }
        var shell = SFTPShell(client: client, copier: copier, progress: TransferProgress(enabled: isatty(2) == 1 && batch == nil))
        if target.path != "." { try shell.run(["cd", target.path]) }
        let input: UnsafeMutablePointer<FILE>?
        if let batch, batch != "-" {
            guard let f = fopen(batch, "r") else { throw ToolError("\(batch): \(String(cString: strerror(errno)))") }
            input = f
        } else {
            input = fdopen(0, "r")
        }
        let interactive = batch == nil && isatty(0) == 1
        while true {
            if interactive { FileHandle.standardOutput.write(Data("qsftp> ".utf8)) }
            guard let line = Self.readLine(input) else { break }
            var words: [String]
            do { words = try Self.split(line) } catch {
                Terminal.warn("qsftp: \(error)")
                if batch != nil { throw ExitCode(1) }
                continue
            }
            guard let first = words.first else { continue }
            var mayFail = false
            if first.hasPrefix("-") && first.count > 1 { words[0].removeFirst(); mayFail = true }
            if batch != nil { print("qsftp> " + line) }
            if ["exit", "quit", "bye"].contains(words[0]) { break }
            do {
                try shell.run(words)
            } catch {
                Terminal.warn("qsftp: \(QSCPCommand.text(error, words.dropFirst().first ?? words[0]))")
                if batch != nil && !mayFail { throw ExitCode(1) }
            }
        }
    }

    static func readLine(_ file: UnsafeMutablePointer<FILE>?) -> String? {
        var buffer: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(buffer) }
        guard getline(&buffer, &capacity, file) >= 0, let buffer else { return nil }
        return String(cString: buffer).trimmingCharacters(in: .newlines)
    }

    /// Splits a command line into words: spaces separate, '...' and "..." quote, \ escapes.
    static func split(_ line: String) throws -> [String] {
        var words: [String] = [], current = "", quote: Character?, escaped = false, inWord = false
        for c in line {
            if escaped { current.append(c); escaped = false; inWord = true; continue }
            if c == "\\" && quote != "'" { escaped = true; continue }
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
                continue
            }
            if c == "'" || c == "\"" { quote = c; inWord = true; continue }
            if c == " " || c == "\t" {
                if inWord { words.append(current); current = ""; inWord = false }
                continue
            }
            current.append(c); inWord = true
        }
        if quote != nil { throw ToolError("unterminated quote") }
        if inWord { words.append(current) }
        return words
    }
}

/// The commands of `qsftp`, on an open SFTP session.
struct SFTPShell {
    let client: SFTPClient
    let copier: QSCPCommand
    let progress: TransferProgress
    var remoteDir = "."

    init(client: SFTPClient, copier: QSCPCommand, progress: TransferProgress) {
        self.client = client; self.copier = copier; self.progress = progress
        remoteDir = (try? client.realpath(".")) ?? "."
    }

    func remote(_ path: String) -> String { path.hasPrefix("/") ? path : QSCPCommand.join(remoteDir, path) }

    mutating func run(_ words: [String]) throws {
        let args = Array(words.dropFirst())
        func need(_ n: Int) throws { guard args.count >= n else { throw ToolError("\(words[0]): needs \(n) argument(s); see 'help'") } }
        switch words[0] {
        case "help", "?":
            print(QSFTPCommand.configuration.discussion)
        case "pwd": print("Remote working directory: \(remoteDir)")
        case "lpwd": print("Local working directory: \(FileManager.default.currentDirectoryPath)")
        case "cd":
            try need(1)
            let path = try client.realpath(remote(args[0]))
            guard try client.stat(path).isDirectory else { throw ToolError("\(args[0]): not a directory") }
            remoteDir = path
        case "lcd":
            try need(1)
            guard FileManager.default.changeCurrentDirectoryPath(args[0]) else { throw ToolError("\(args[0]): cannot change to it") }
        case "ls":
            let long = args.first == "-l"
            let path = remote(args.first { !$0.hasPrefix("-") } ?? ".")
            let attrs = try client.stat(path)
            let entries = attrs.isDirectory ? try client.listDirectory(path).sorted { $0.filename < $1.filename }
                : [SFTPNameEntry(filename: path, longname: path, attributes: attrs)]
            for e in entries { print(long ? e.longname : e.filename) }
        case "lls":
            let names = try FileManager.default.contentsOfDirectory(atPath: args.first ?? ".").sorted()
            for n in names { print(n) }
        case "get":
            try need(1)
            let source = remote(args[0])
            let local = args.count > 1 ? args[1] : (args[0] as NSString).lastPathComponent
            var st = stat()
            let target = stat(local, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR ? QSCPCommand.join(local, (source as NSString).lastPathComponent) : local
            let attrs = try client.stat(source)
            guard !attrs.isDirectory else { throw ToolError("\(args[0]): is a directory (use qscp -r)") }
            try copier.downloadFile(source, to: target, attrs: attrs, client: client, progress: progress)
        case "put":
            try need(1)
            let name = (args[0] as NSString).lastPathComponent
            var target = remote(args.count > 1 ? args[1] : name)
            if let a = try? client.stat(target), a.isDirectory { target = QSCPCommand.join(target, name) }
            try copier.uploadFile(args[0], to: target, client: client, progress: progress)
        case "mkdir": try need(1); try client.mkdir(remote(args[0]))
        case "rmdir": try need(1); try client.rmdir(remote(args[0]))
        case "rm": try need(1); for a in args { try client.remove(remote(a)) }
        case "rename": try need(2); try client.rename(from: remote(args[0]), to: remote(args[1]))
        case "ln":
            guard args.count == 3, args[0] == "-s" else { throw ToolError("usage: ln -s target link") }
            try client.symlink(target: args[1], linkPath: remote(args[2]))
        case "chmod":
            try need(2)
            guard let mode = UInt32(args[0], radix: 8) else { throw ToolError("bad mode '\(args[0])' (octal, e.g. 644)") }
            try client.setPermissions(remote(args[1]), mode)
        case "df":
            let v = try client.statvfs(remote(args.first ?? "."))
            // Server-supplied numbers: multiply without trapping on overflow.
            let total = v.blocks.multipliedReportingOverflow(by: v.fragmentSize), free = v.availableBlocks.multipliedReportingOverflow(by: v.fragmentSize)
            guard !total.overflow, !free.overflow else { throw ToolError("df: the server's numbers are out of range") }
            print("\(total.partialValue / 1024) kB total, \(free.partialValue / 1024) kB available")
        default:
            throw ToolError("unknown command '\(words[0])'; see 'help'")
        }
    }
}
