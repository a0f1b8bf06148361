import ArgumentParser
import Foundation
import QSFTP
import QSSHSession

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `qscp`: copies files to and from a qsshd host with SFTP over a QNSP tunnel (qssh's client, in process).
public struct QSCPCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "qscp",
        abstract: "Post-quantum file copy: SFTP over a QNSP tunnel, like scp.",
        discussion: """
            qscp copies between this machine and one qsshd host, in either direction:
              qscp [options] SOURCE... [user@]host:DEST      (upload)
              qscp [options] [user@]host:SOURCE... DEST      (download; remote globs such as 'host:*.log' work)

            It runs qssh's client in its own process, as 'qssh -T -s host sftp' would
            (so -P, -i, -J, -F, -o and ~/.qssh/config act as for qssh), and keeps many
            requests in flight, so the speed does not depend on the round-trip time.

            Each file is written under a temporary name (.NAME.qscp-part) in the
            destination directory and renamed over DEST only when complete: an
            interrupted copy never leaves a truncated file in DEST's place. --resume
            continues such a partial file. A directory is never overwritten by a file.
            -r copies trees (symbolic links are copied as links); a file that fails is
            reported and the copy goes on with the others; the exit status is then 1.

            A progress line (name, percent, bytes, rate, ETA) is drawn when stderr is a
            terminal, unless -q.
            """)

    @Flag(name: .customShort("r"), help: "Copy directories recursively.")
    var recursive = false

    @Flag(name: .customShort("p"), help: "Preserve modification times and modes.")
    var preserve = false

    @Flag(name: .customShort("q"), help: "No progress line.")
    var quiet = false

    @OptionGroup var link: QSSHLinkOptions

    @Option(name: .long, help: "Requests in flight per transfer, each up to 256 KiB: 16 (4 MiB) fills a LAN; raise it for long, fast links.")
    var requests = 16

    @Flag(name: .long, help: "Continue partial copies left by an interrupted run (.NAME.qscp-part).")
    var resume = false

    @Flag(name: .shortAndLong, help: "Report each file and resumed offsets on stderr.")
    var verbose = false

    @Argument(help: "SOURCE... DEST")
    var operands: [String] = []

    public init() {}

    /// A failure that names one file; the copy goes on with the others.
    struct FileError: Error { let message: String }

    public func run() throws {
        guard operands.count >= 2, let last = operands.last else { throw ToolError("usage: qscp [-rpq] [-P port] [-i key] [-J jump] SOURCE... DEST") }
        let sources = Array(operands.dropLast())
        let remoteDest = RemotePath.parse(last)
        let remoteSources = sources.map(RemotePath.parse)
        let upload: Bool
        let host: RemotePath
        if let remoteDest {
            guard remoteSources.allSatisfy({ $0 == nil }) else { throw ToolError("copying between two remote paths is not supported") }
            upload = true
            host = remoteDest
        } else {
            guard let first = remoteSources.first ?? nil, remoteSources.allSatisfy({ $0 != nil }) else {
                throw ToolError("one side must be remote ([user@]host:path) and the sources must all be on the same side")
            }
            guard remoteSources.allSatisfy({ $0?.destination == first.destination }) else { throw ToolError("all remote sources must be on one host") }
            upload = false
            host = first
        }
        let (client, qssh) = try connect(host)
        var failures = 0
        let progress = TransferProgress(enabled: !quiet && isatty(2) == 1)
        let report: (String) -> Void = { message in
            failures += 1
            Terminal.warn("qscp: " + message)
        }
        if upload {
            uploadAll(sources, to: host.path, client: client, progress: progress, report: report)
        } else {
            downloadAll(remoteSources.compactMap { $0?.path }, to: last, client: client, progress: progress, report: report)
        }
        client.close()
        _ = qssh.waitForExit()
        if failures > 0 { throw ExitCode(1) }
    }

    // MARK: Connection

    /// Opens the SFTP session: qssh's client code runs in this process (same options, same
    /// ~/.qssh/config handling as `qssh -T -s HOST sftp`), joined to the SFTP client by a socket pair.
    func connect(_ host: RemotePath) throws -> (SFTPClient, InProcessSession) {
        let arguments = link.qsshArguments + ["-T", "-s", host.destination, "sftp"]
        let session = try InProcessSession.start(arguments: arguments, name: Self.configuration.commandName ?? "qscp")
        let own = dup(session.fd)
        guard own >= 0 else {
            _ = session.waitForExit()
            throw ToolError("dup: \(String(cString: strerror(errno)))")
        }
        do {
            let client = try SFTPClient(input: own, output: own)
            client.maxRequestsInFlight = max(1, requests)
            return (client, session)
        } catch {
            close(own)
            let status = session.waitForExit()
            // The client has said why on stderr (unless the connection stood and SFTP failed).
            throw ToolError("no SFTP session with \(host.host) (\(error); status \(status))")
        }
    }

    // MARK: Upload

    func uploadAll(_ sources: [String], to dest: String, client: SFTPClient, progress: TransferProgress, report: (String) -> Void) {
        let destIsDir = (try? client.stat(dest))?.isDirectory ?? false
        if sources.count > 1 && !destIsDir {
            return report("\(dest): not a directory (several sources need a directory)")
        }
        for source in sources {
            var st = stat()
            guard lstat(source, &st) == 0 || stat(source, &st) == 0 else {
                report("\(source): \(String(cString: strerror(errno)))")
                continue
            }
            let target = destIsDir ? Self.join(dest, (source as NSString).lastPathComponent) : dest
            if st.st_mode & S_IFMT == S_IFDIR {
                guard recursive else { report("\(source): is a directory (use -r)"); continue }
                uploadTree(source, to: target, client: client, progress: progress, report: report)
            } else {
                do { try uploadFile(source, to: target, client: client, progress: progress) } catch { report(Self.text(error, source)) }
            }
        }
    }

    func uploadTree(_ dir: String, to target: String, client: SFTPClient, progress: TransferProgress, report: (String) -> Void) {
        var st = stat()
        _ = stat(dir, &st)
        do {
            if let existing = try? client.stat(target) {
                guard existing.isDirectory else { return report("\(target): exists and is not a directory") }
            } else {
                try client.mkdir(target, permissions: UInt32(st.st_mode & 0o7777) | 0o700)
            }
        } catch {
            return report(Self.text(error, target))
        }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted() } catch { return report("\(dir): \(error.localizedDescription)") }
        for name in names {
            let path = Self.join(dir, name), remote = Self.join(target, name)
            var entry = stat()
            guard lstat(path, &entry) == 0 else { report("\(path): \(String(cString: strerror(errno)))"); continue }
            switch entry.st_mode & S_IFMT {
            case S_IFDIR: uploadTree(path, to: remote, client: client, progress: progress, report: report)
            case S_IFLNK:
                do {
                    let link = try FileManager.default.destinationOfSymbolicLink(atPath: path)
                    if (try? client.lstat(remote)) != nil { try client.remove(remote) }
                    try client.symlink(target: link, linkPath: remote)
                } catch { report(Self.text(error, path)) }
            case S_IFREG:
                do { try uploadFile(path, to: remote, client: client, progress: progress) } catch { report(Self.text(error, path)) }
            default: report("\(path): not a regular file, directory or link; skipped")
            }
        }
        if preserve { try? client.setstat(target, SFTPAttributes(permissions: UInt32(st.st_mode & 0o7777), atime: Self.seconds(st.st_atim), mtime: Self.seconds(st.st_mtim))) }
    }

    func uploadFile(_ source: String, to target: String, client: SFTPClient, progress: TransferProgress) throws {
        let fd = open(source, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(message: "\(source): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { throw FileError(message: "\(source): not a regular file") }
        let existing = try? client.stat(target)
        if let existing, existing.isDirectory {
            throw FileError(message: "\(target): is a directory on the remote side; not overwritten")
        }
        // A device or pipe (e.g. /dev/null) is written in place: renaming over it would replace it.
        let inPlace = existing.map { !$0.isRegularFile } ?? false
        let partial = inPlace ? target : Self.partialName(target)
        var offset: UInt64 = 0
        if resume && !inPlace, let size = (try? client.lstat(partial))?.size, size <= UInt64(st.st_size) { offset = size }
        if verbose { Terminal.warn("qscp: \(source) -> \(target)" + (offset > 0 ? " (resuming at \(offset))" : "")) }
        let mode = UInt32(st.st_mode & 0o7777)
        let handle = try client.open(partial, flags: offset > 0 ? [.write, .create] : [.write, .create, .truncate],
                                     attributes: SFTPAttributes(permissions: mode | 0o600))
        progress.begin((source as NSString).lastPathComponent, total: UInt64(st.st_size), resumedAt: offset)
        do {
            try client.upload(from: fd, localOffset: offset, to: handle, remoteOffset: offset) { progress.update(offset + $0) }
            if client.extensions["fsync@openssh.com"] != nil { try client.fsync(handle) }
            try client.close(handle)
        } catch {
            try? client.close(handle)
            progress.update(offset, final: true)
            throw error
        }
        progress.update(UInt64(st.st_size), final: true)
        if inPlace { return }
        var attrs = SFTPAttributes(permissions: mode)
        if preserve { attrs.atime = Self.seconds(st.st_atim); attrs.mtime = Self.seconds(st.st_mtim) }
        try client.setstat(partial, attrs)
        try client.rename(from: partial, to: target, overwrite: true)
    }

    // MARK: Download

    func downloadAll(_ sources: [String], to dest: String, client: SFTPClient, progress: TransferProgress, report: (String) -> Void) {
        var expanded: [String] = []
        for source in sources {
            if Self.hasGlob((source as NSString).lastPathComponent) {
                let dir = (source as NSString).deletingLastPathComponent
                let pattern = (source as NSString).lastPathComponent
                do {
                    let matches = try client.listDirectory(dir.isEmpty ? "." : dir).map(\.filename)
                        .filter { Self.isPlainName($0) && fnmatch(pattern, $0, FNM_PERIOD) == 0 }.sorted()
                    if matches.isEmpty { report("\(source): no match") }
                    expanded += matches.map { dir.isEmpty ? $0 : Self.join(dir, $0) }
                } catch { report(Self.text(error, source)) }
            } else {
                expanded.append(source)
            }
        }
        var st = stat()
        let destIsDir = stat(dest, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
        if expanded.count > 1 && !destIsDir { return report("\(dest): not a directory (several sources need a directory)") }
        for source in expanded {
            let target = destIsDir ? Self.join(dest, (source as NSString).lastPathComponent) : dest
            do {
                let attrs = try client.stat(source)
                if attrs.isDirectory {
                    guard recursive else { report("\(source): is a directory (use -r)"); continue }
                    downloadTree(source, to: target, attrs: attrs, client: client, progress: progress, report: report)
                } else {
                    try downloadFile(source, to: target, attrs: attrs, client: client, progress: progress)
                }
            } catch { report(Self.text(error, source)) }
        }
    }

    func downloadTree(_ dir: String, to target: String, attrs: SFTPAttributes, client: SFTPClient, progress: TransferProgress, report: (String) -> Void) {
        var st = stat()
        if lstat(target, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else { return report("\(target): exists and is not a directory (a link is not followed)") }
        } else if mkdir(target, mode_t((attrs.permissions ?? 0o755) & 0o7777) | 0o700) != 0 {
            return report("\(target): \(String(cString: strerror(errno)))")
        }
        let entries: [SFTPNameEntry]
        do { entries = try client.listDirectory(dir).sorted { $0.filename < $1.filename } } catch { return report(Self.text(error, dir)) }
        for entry in entries where entry.filename != "." && entry.filename != ".." {
            // Names come from the server: one path component each, and never through a local link.
            guard Self.isPlainName(entry.filename) else {
                report("\(dir): the server sent the name '\(entry.filename)', which is not a plain file name; skipped")
                continue
            }
            let remote = Self.join(dir, entry.filename), local = Self.join(target, entry.filename)
            var existing = stat()
            if lstat(local, &existing) == 0 && existing.st_mode & S_IFMT == S_IFLNK && !entry.attributes.isSymlink {
                report("\(local): is a symbolic link here; not followed, skipped")
                continue
            }
            do {
                if entry.attributes.isDirectory {
                    downloadTree(remote, to: local, attrs: entry.attributes, client: client, progress: progress, report: report)
                } else if entry.attributes.isSymlink {
                    let link = try client.readlink(remote)
                    unlink(local)
                    guard symlink(link, local) == 0 else { throw FileError(message: "\(local): \(String(cString: strerror(errno)))") }
                } else if entry.attributes.isRegularFile {
                    try downloadFile(remote, to: local, attrs: entry.attributes, client: client, progress: progress)
                } else {
                    report("\(remote): not a regular file, directory or link; skipped")
                }
            } catch { report(Self.text(error, remote)) }
        }
        if preserve { Self.setLocal(target, attrs, mode: true) }
    }

    func downloadFile(_ source: String, to target: String, attrs: SFTPAttributes, client: SFTPClient, progress: TransferProgress) throws {
        var st = stat()
        let exists = stat(target, &st) == 0
        if exists && st.st_mode & S_IFMT == S_IFDIR {
            throw FileError(message: "\(target): is a directory; not overwritten")
        }
        // A device or pipe (e.g. /dev/null) is written in place: renaming over it would replace it.
        let inPlace = exists && st.st_mode & S_IFMT != S_IFREG
        let partial = inPlace ? target : Self.partialName(target)
        var offset: UInt64 = 0
        if resume && !inPlace, lstat(partial, &st) == 0, st.st_mode & S_IFMT == S_IFREG, UInt64(st.st_size) <= attrs.size ?? 0 { offset = UInt64(st.st_size) }
        if verbose { Terminal.warn("qscp: \(source) -> \(target)" + (offset > 0 ? " (resuming at \(offset))" : "")) }
        let fd = inPlace ? open(partial, O_WRONLY | O_CLOEXEC) : open(partial, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (offset > 0 ? 0 : O_TRUNC), 0o600)
        guard fd >= 0 else { throw FileError(message: "\(partial): \(String(cString: strerror(errno)))") }
        progress.begin((source as NSString).lastPathComponent, total: attrs.size ?? 0, resumedAt: offset)
        do {
            try client.download(remotePath: source, to: fd, offset: offset) { progress.update(offset + $0) }
            guard inPlace || fsync(fd) == 0 else { throw FileError(message: "\(partial): \(String(cString: strerror(errno)))") }
        } catch {
            close(fd)
            progress.update(offset, final: true)
            throw error
        }
        progress.update(attrs.size ?? 0, final: true)
        if inPlace { close(fd); return }
        let umask = Self.currentUmask()
        let mode = mode_t((attrs.permissions ?? 0o644) & 0o7777)
        fchmod(fd, preserve ? mode : mode & ~umask)
        close(fd)
        if preserve { Self.setLocal(partial, attrs, mode: false) }
        guard rename(partial, target) == 0 else { throw FileError(message: "\(target): \(String(cString: strerror(errno)))") }
    }

    // MARK: Helpers

    static func partialName(_ path: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        let name = "." + (path as NSString).lastPathComponent + ".qscp-part"
        return dir.isEmpty ? name : join(dir, name)
    }

    /// A name a server may hand us for a directory entry: one component, not "." or "..".
    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\0")
    }

    static func join(_ dir: String, _ name: String) -> String { dir.hasSuffix("/") ? dir + name : dir + "/" + name }

    static func hasGlob(_ s: String) -> Bool { s.contains { "*?[".contains($0) } }

    static func seconds(_ t: timespec) -> UInt32 { UInt32(truncatingIfNeeded: t.tv_sec) }

    static func currentUmask() -> mode_t {
        let m = umask(0o022)
        umask(m)
        return m
    }

    static func setLocal(_ path: String, _ attrs: SFTPAttributes, mode: Bool) {
        if mode, let p = attrs.permissions { chmod(path, mode_t(p & 0o7777)) }
        if let a = attrs.atime, let m = attrs.mtime {
            var times = [timespec(tv_sec: Int(a), tv_nsec: 0), timespec(tv_sec: Int(m), tv_nsec: 0)]
            utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
        }
    }

    static func text(_ error: Error, _ path: String) -> String {
        if let e = error as? FileError { return e.message }
        return "\(path): \(error)"
    }
}
