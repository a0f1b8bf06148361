#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking SFTP v3 client over a pair of file descriptors.
///
/// The client takes ownership of both descriptors once `init` succeeds
/// (`close()` or deinit closes them; a failed `init` leaves them open).
/// It is single-threaded and not thread-safe.
///
/// Deadlock avoidance: bulk transfers keep at most `maxRequestsInFlight`
/// requests outstanding from a single thread. A deadlock would need *both*
/// directions to be full at once; for downloads the outstanding requests are
/// tiny (~40 bytes each), for uploads the outstanding responses are tiny
/// (~30 bytes each), so with the default of 64 the small direction never holds
/// more than ~3 KiB and can never fill a transport buffer of 4 KiB or more.
/// Ignores SIGPIPE process-wide so a dead peer surfaces as `connectionClosed`.
public final class SFTPClient {
    /// Protocol version announced by the server (always 3).
    public private(set) var serverVersion: UInt32 = 0
    /// Extensions announced in VERSION (name → data).
    public private(set) var extensions: [String: String] = [:]
    /// Server limits (from `limits@openssh.com`, else `SFTPLimits.conservative`).
    public private(set) var limits: SFTPLimits = .conservative
    /// Maximum pipelined requests during `download` / `upload`.
    public var maxRequestsInFlight = 64
    /// Overrides the per-request transfer size (otherwise derived from `limits`, at most 256 KiB).
    public var transferChunkSize: Int?

    private let input: CInt
    private let output: CInt
    private var reader = SFTPPacketReader()
    private var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var lastID: UInt32 = 0
    private var isOpen = false

    /// Performs INIT/VERSION and queries `limits@openssh.com` when available.
    /// - Parameters:
    ///   - input: descriptor the server's responses are read from.
    ///   - output: descriptor requests are written to (may equal `input` for a socket).
    public init(input: CInt, output: CInt) throws(SFTPError) {
        self.input = input
        self.output = output
        POSIX.ignoreSIGPIPE()
        try send(.initialize(version: 3, extensions: []))
        let reply = try receive()
        guard case .version(let version, let exts) = reply else {
            throw .unexpectedMessage("expected VERSION, got \(reply.type)")
        }
        guard version == 3 else { throw .unsupportedVersion(version) }
        serverVersion = version
        for e in exts { extensions[e.name] = e.data }
        if extensions["limits@openssh.com"] != nil {
            var r = SFTPWireReader(try extended("limits@openssh.com", SFTPWireWriter())[...])
            let l = try SFTPLimits(from: &r)
            limits = SFTPLimits(
                maxPacketLength: l.maxPacketLength == 0 ? Self.conservativeLimits.maxPacketLength : l.maxPacketLength,
                maxReadLength: l.maxReadLength == 0 ? Self.conservativeLimits.maxReadLength : l.maxReadLength,
                maxWriteLength: l.maxWriteLength == 0 ? Self.conservativeLimits.maxWriteLength : l.maxWriteLength,
                maxOpenHandles: l.maxOpenHandles)
        }
        isOpen = true
    }

    private static let conservativeLimits = SFTPLimits.conservative

    deinit { close() }

    /// Closes both descriptors (idempotent). The server sees EOF and ends the session.
    public func close() {
        guard isOpen else { return }
        isOpen = false
        POSIX.closeFD(output)
        if input != output { POSIX.closeFD(input) }
    }

    // MARK: - Transport

    private func nextID() -> UInt32 {
        lastID &+= 1
        return lastID
    }

    private func send(_ message: SFTPMessage) throws(SFTPError) {
        try POSIX.writeAll(output, message.encode())
    }

    /// WRITE without building the packet in memory: the header, then the data straight from
    /// the caller's buffer (the bulk path: no per-request allocation or copy of the data).
    private func sendWrite(id: UInt32, handle: [UInt8], offset: UInt64, data: [UInt8], count: Int) throws(SFTPError) {
        var header = SFTPWireWriter()
        header.u32(UInt32(1 + 4 + 4 + handle.count + 8 + 4 + count))
        header.u8(SFTPMessage.PacketType.write.rawValue)
        header.u32(id)
        header.data(handle)
        header.u64(offset)
        header.u32(UInt32(count))
        try POSIX.writeAll(output, header.bytes)
        let failure: SFTPError? = data.withUnsafeBytes { raw in
            do throws(SFTPError) { try POSIX.writeAll(output, UnsafeRawBufferPointer(rebasing: raw[0..<count])) } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }

    private func receive() throws(SFTPError) -> SFTPMessage {
        while true {
            if let body = try reader.next() { return try SFTPMessage.decode(body) }
            let n = try POSIX.readSome(input, &readBuffer)
            if n == 0 { throw .connectionClosed }
            reader.feed(readBuffer[0..<n])
        }
    }

    /// Sends one request and waits for its response.
    private func call(_ build: (UInt32) -> SFTPMessage) throws(SFTPError) -> SFTPMessage {
        let id = nextID()
        try send(build(id))
        let reply = try receive()
        guard reply.requestID == id else { throw .unknownRequestID(reply.requestID ?? 0) }
        return reply
    }

    private static func failure(_ m: SFTPMessage) -> SFTPError {
        if case .status(_, let code, let message, _) = m { return .status(code, message) }
        return .unexpectedMessage("\(m.type)")
    }

    private func callOK(_ build: (UInt32) -> SFTPMessage) throws(SFTPError) {
        let m = try call(build)
        if case .status(_, let code, _, _) = m, code == .ok { return }
        throw Self.failure(m)
    }

    private func callHandle(_ build: (UInt32) -> SFTPMessage) throws(SFTPError) -> SFTPHandle {
        let m = try call(build)
        if case .handle(_, let h) = m { return SFTPHandle(h) }
        throw Self.failure(m)
    }

    private func callAttrs(_ build: (UInt32) -> SFTPMessage) throws(SFTPError) -> SFTPAttributes {
        let m = try call(build)
        if case .attrs(_, let a) = m { return a }
        throw Self.failure(m)
    }

    private func callSingleName(_ build: (UInt32) -> SFTPMessage) throws(SFTPError) -> String {
        let m = try call(build)
        if case .name(_, let entries) = m, entries.count == 1 { return entries[0].filename }
        throw Self.failure(m)
    }

    /// Sends an extended request; returns the EXTENDED_REPLY payload (empty for STATUS OK).
    private func extended(_ name: String, _ payload: SFTPWireWriter) throws(SFTPError) -> [UInt8] {
        guard extensions[name] != nil else { throw .extensionUnsupported(name) }
        let m = try call { .extended(id: $0, name: name, data: payload.bytes) }
        switch m {
        case .extendedReply(_, let d): return d
        case .status(_, let code, _, _) where code == .ok: return []
        default: throw Self.failure(m)
        }
    }

    // MARK: - Path operations

    /// Canonical absolute form of `path` as seen by the server ("." = start directory).
    public func realpath(_ path: String) throws(SFTPError) -> String {
        try callSingleName { .realpath(id: $0, path: path) }
    }

    public func stat(_ path: String) throws(SFTPError) -> SFTPAttributes {
        try callAttrs { .stat(id: $0, path: path) }
    }

    public func lstat(_ path: String) throws(SFTPError) -> SFTPAttributes {
        try callAttrs { .lstat(id: $0, path: path) }
    }

    public func setstat(_ path: String, _ attributes: SFTPAttributes) throws(SFTPError) {
        try callOK { .setstat(id: $0, path: path, attributes: attributes) }
    }

    /// chmod (only the low 12 bits are used).
    public func setPermissions(_ path: String, _ mode: UInt32) throws(SFTPError) {
        try setstat(path, SFTPAttributes(permissions: mode))
    }

    /// Sets access and modification time (seconds since the epoch).
    public func setTimes(_ path: String, atime: UInt32, mtime: UInt32) throws(SFTPError) {
        try setstat(path, SFTPAttributes(atime: atime, mtime: mtime))
    }

    /// All entries of a directory (READDIR until EOF); "." and ".." are dropped unless requested.
    public func listDirectory(_ path: String, includeDotEntries: Bool = false) throws(SFTPError) -> [SFTPNameEntry] {
        let h = try openDirectory(path)
        var all: [SFTPNameEntry] = []
        do {
            while let batch = try readDirectory(h) {
                all += batch.filter { includeDotEntries || ($0.filename != "." && $0.filename != "..") }
            }
        } catch {
            try? close(h)
            throw error
        }
        try close(h)
        return all
    }

    public func mkdir(_ path: String, permissions: UInt32? = nil) throws(SFTPError) {
        try callOK { .mkdir(id: $0, path: path, attributes: SFTPAttributes(permissions: permissions)) }
    }

    public func rmdir(_ path: String) throws(SFTPError) {
        try callOK { .rmdir(id: $0, path: path) }
    }

    public func remove(_ path: String) throws(SFTPError) {
        try callOK { .remove(id: $0, path: path) }
    }

    /// Renames `from` to `to`. With `overwrite` and `posix-rename@openssh.com`
    /// available an existing target is replaced atomically; otherwise the plain
    /// RENAME is used, which fails if `to` exists.
    public func rename(from: String, to: String, overwrite: Bool = false) throws(SFTPError) {
        if overwrite && extensions["posix-rename@openssh.com"] != nil {
            var w = SFTPWireWriter()
            w.string(from); w.string(to)
            _ = try extended("posix-rename@openssh.com", w)
        } else {
            try callOK { .rename(id: $0, oldPath: from, newPath: to) }
        }
    }

    /// Creates `linkPath` pointing at `target` (sent in OpenSSH order: target first).
    public func symlink(target: String, linkPath: String) throws(SFTPError) {
        try callOK { .symlink(id: $0, target: target, linkPath: linkPath) }
    }

    public func readlink(_ path: String) throws(SFTPError) -> String {
        try callSingleName { .readlink(id: $0, path: path) }
    }

    /// Creates a hard link `newPath` to `existingPath` (`hardlink@openssh.com`).
    public func hardlink(existingPath: String, newPath: String) throws(SFTPError) {
        var w = SFTPWireWriter()
        w.string(existingPath); w.string(newPath)
        _ = try extended("hardlink@openssh.com", w)
    }

    /// File system statistics (`statvfs@openssh.com`).
    public func statvfs(_ path: String) throws(SFTPError) -> SFTPStatVFS {
        var w = SFTPWireWriter()
        w.string(path)
        var r = SFTPWireReader(try extended("statvfs@openssh.com", w)[...])
        return try SFTPStatVFS(from: &r)
    }

    // MARK: - Handle operations

    public func open(_ path: String, flags: SFTPOpenFlags, attributes: SFTPAttributes = SFTPAttributes()) throws(SFTPError) -> SFTPHandle {
        try callHandle { .open(id: $0, path: path, flags: flags, attributes: attributes) }
    }

    public func openDirectory(_ path: String) throws(SFTPError) -> SFTPHandle {
        try callHandle { .opendir(id: $0, path: path) }
    }

    /// The next batch of entries, or nil at the end of the directory.
    public func readDirectory(_ handle: SFTPHandle) throws(SFTPError) -> [SFTPNameEntry]? {
        let m = try call { .readdir(id: $0, handle: handle.bytes) }
        switch m {
        case .name(_, let entries): return entries
        case .status(_, let code, _, _) where code == .eof: return nil
        default: throw Self.failure(m)
        }
    }

    public func close(_ handle: SFTPHandle) throws(SFTPError) {
        try callOK { .close(id: $0, handle: handle.bytes) }
    }

    /// Reads up to `length` bytes; nil at end of file. May return fewer bytes than asked.
    public func read(_ handle: SFTPHandle, offset: UInt64, length: UInt32) throws(SFTPError) -> [UInt8]? {
        let m = try call { .read(id: $0, handle: handle.bytes, offset: offset, length: length) }
        switch m {
        case .data(_, let d): return d
        case .status(_, let code, _, _) where code == .eof: return nil
        default: throw Self.failure(m)
        }
    }

    public func write(_ handle: SFTPHandle, offset: UInt64, data: [UInt8]) throws(SFTPError) {
        try callOK { .write(id: $0, handle: handle.bytes, offset: offset, data: data) }
    }

    public func fstat(_ handle: SFTPHandle) throws(SFTPError) -> SFTPAttributes {
        try callAttrs { .fstat(id: $0, handle: handle.bytes) }
    }

    public func fsetstat(_ handle: SFTPHandle, _ attributes: SFTPAttributes) throws(SFTPError) {
        try callOK { .fsetstat(id: $0, handle: handle.bytes, attributes: attributes) }
    }

    /// Flushes the remote file to stable storage (`fsync@openssh.com`).
    public func fsync(_ handle: SFTPHandle) throws(SFTPError) {
        var w = SFTPWireWriter()
        w.data(handle.bytes)
        _ = try extended("fsync@openssh.com", w)
    }

    /// File system statistics for an open handle (`fstatvfs@openssh.com`).
    public func fstatvfs(_ handle: SFTPHandle) throws(SFTPError) -> SFTPStatVFS {
        var w = SFTPWireWriter()
        w.data(handle.bytes)
        var r = SFTPWireReader(try extended("fstatvfs@openssh.com", w)[...])
        return try SFTPStatVFS(from: &r)
    }

    // MARK: - Bulk transfers

    private func chunkSize(_ limit: UInt64) -> Int {
        if let transferChunkSize { return max(1, transferChunkSize) }
        var n = min(limit, 256 * 1024)
        if limits.maxPacketLength > 1024 { n = min(n, limits.maxPacketLength - 1024) }
        return Int(max(n, 1))
    }

    private struct Chunk {
        var offset: UInt64
        var length: UInt32
    }

    /// Downloads `remotePath` from `offset` to its end into `localFD`, writing
    /// each block with pwrite(2) at the same offset (so `offset` > 0 resumes a
    /// partial local copy). `localFD` must be seekable and not O_APPEND.
    /// `progress` receives the cumulative number of bytes written so far.
    /// Returns the number of bytes transferred.
    @discardableResult
    public func download(remotePath: String, to localFD: CInt, offset: UInt64 = 0,
                         progress: (UInt64) -> Void = { _ in }) throws(SFTPError) -> UInt64 {
        let handle = try open(remotePath, flags: .read)
        let result: Result<UInt64, SFTPError>
        do {
            let sizeHint = (try? fstat(handle))?.size
            result = .success(try downloadChunks(handle, localFD, offset, sizeHint, progress))
        } catch {
            result = .failure(error)
        }
        try? close(handle)
        return try result.get()
    }

    private func downloadChunks(_ handle: SFTPHandle, _ localFD: CInt, _ start: UInt64, _ sizeHint: UInt64?,
                                _ progress: (UInt64) -> Void) throws(SFTPError) -> UInt64 {
        let chunk = UInt32(chunkSize(limits.maxReadLength))
        var outstanding: [UInt32: Chunk] = [:]
        var retries: [Chunk] = []
        var nextOffset = start
        var eofAt = UInt64.max
        var total: UInt64 = 0
        var firstError: SFTPError?
        while true {
            while firstError == nil && outstanding.count < max(1, maxRequestsInFlight) {
                let req: Chunk
                if let r = retries.popLast() {
                    if r.offset >= eofAt { continue }
                    req = r
                } else if eofAt == .max && (nextOffset <= sizeHint ?? .max || outstanding.isEmpty) {
                    // Beyond the size hint (file growing) go one request at a time until EOF.
                    req = Chunk(offset: nextOffset, length: chunk)
                    nextOffset += UInt64(chunk)
                } else {
                    break
                }
                let id = nextID()
                try send(.read(id: id, handle: handle.bytes, offset: req.offset, length: req.length))
                outstanding[id] = req
            }
            if outstanding.isEmpty { break }
            let reply = try receive()
            guard let id = reply.requestID, let req = outstanding.removeValue(forKey: id) else {
                throw .unknownRequestID(reply.requestID ?? 0)
            }
            switch reply {
            case .data(_, let data) where !data.isEmpty && data.count <= Int(req.length):
                guard firstError == nil else { continue }
                do {
                    try POSIX.pwriteAll(localFD, data, offset: req.offset)
                } catch {
                    firstError = error
                    continue
                }
                total += UInt64(data.count)
                progress(total)
                if data.count < Int(req.length) {   // short read: ask again for the remainder
                    retries.append(Chunk(offset: req.offset + UInt64(data.count), length: req.length - UInt32(data.count)))
                }
            case .data(_, let data) where data.isEmpty:
                eofAt = min(eofAt, req.offset)
            case .status(_, let code, _, _) where code == .eof:
                eofAt = min(eofAt, req.offset)
            default:
                if firstError == nil { firstError = Self.failure(reply) }
            }
        }
        if let firstError { throw firstError }
        return total
    }

    /// Uploads `localFD` (read with pread(2) from `localOffset` to its end) to
    /// `remotePath`, opened with `flags`, writing at `remoteOffset`. Use
    /// `flags: [.write, .create]` with matching offsets to resume. Returns the
    /// number of bytes transferred; `progress` receives the cumulative count of
    /// acknowledged bytes.
    @discardableResult
    public func upload(from localFD: CInt, localOffset: UInt64 = 0, to remotePath: String, remoteOffset: UInt64 = 0,
                       flags: SFTPOpenFlags = [.write, .create, .truncate], permissions: UInt32? = nil,
                       progress: (UInt64) -> Void = { _ in }) throws(SFTPError) -> UInt64 {
        let handle = try open(remotePath, flags: flags, attributes: SFTPAttributes(permissions: permissions))
        let result: Result<UInt64, SFTPError>
        do {
            result = .success(try upload(from: localFD, localOffset: localOffset, to: handle,
                                         remoteOffset: remoteOffset, progress: progress))
        } catch {
            result = .failure(error)
        }
        do {
            try close(handle)
        } catch {
            if case .success = result { throw error }
        }
        return try result.get()
    }

    /// Uploads into an already open remote handle (which is left open).
    @discardableResult
    public func upload(from localFD: CInt, localOffset: UInt64 = 0, to handle: SFTPHandle, remoteOffset: UInt64 = 0,
                       progress: (UInt64) -> Void = { _ in }) throws(SFTPError) -> UInt64 {
        let chunk = chunkSize(limits.maxWriteLength)
        var buffer = [UInt8](repeating: 0, count: chunk)
        var outstanding: [UInt32: Int] = [:]
        var position: UInt64 = 0
        var acknowledged: UInt64 = 0
        var localEOF = false
        var firstError: SFTPError?
        while true {
            while firstError == nil && !localEOF && outstanding.count < max(1, maxRequestsInFlight) {
                let n: Int
                do {
                    n = try POSIX.preadFull(localFD, &buffer, count: chunk, offset: localOffset + position)
                } catch {
                    firstError = error
                    break
                }
                if n == 0 { localEOF = true; break }
                let id = nextID()
                try sendWrite(id: id, handle: handle.bytes, offset: remoteOffset + position, data: buffer, count: n)
                outstanding[id] = n
                position += UInt64(n)
            }
            if outstanding.isEmpty { break }
            let reply = try receive()
            guard let id = reply.requestID, let n = outstanding.removeValue(forKey: id) else {
                throw .unknownRequestID(reply.requestID ?? 0)
            }
            if case .status(_, let code, _, _) = reply, code == .ok {
                acknowledged += UInt64(n)
                progress(acknowledged)
            } else if firstError == nil {
                firstError = Self.failure(reply)
            }
        }
        if let firstError { throw firstError }
        return acknowledged
    }
}
