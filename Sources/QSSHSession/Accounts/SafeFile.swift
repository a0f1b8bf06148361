import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a small file a server must not be tricked by: only a regular file is read (a FIFO, a
/// device or a directory would block or mislead), it is opened with O_NONBLOCK so that even
/// the open cannot block, O_NOFOLLOW refuses a symbolic link as the last component, and the
/// checks are made on the open descriptor (fstat), so the file cannot be swapped in between.
public enum SafeFile {
    /// What went wrong, in words for the server log.
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// Reads `path` if it is a regular file owned by root or `owner` (when given), not writable by
    /// group or others (when `strict`), at most `limit` bytes long.
    public static func read(
        path: String,
        owner: UInt32? = nil,
        strict: Bool = true,
        limit: Int = 1 << 20
    ) throws(Failure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else {
            let code = errno
            if code == ELOOP { throw Failure(description: "\(path) is a symbolic link") }
            throw Failure(description: "cannot open \(path): \(String(cString: strerror(code)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw Failure(description: "cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw Failure(description: "\(path) is not a regular file") }
        if let owner, st.st_uid != owner && st.st_uid != 0 {
            throw Failure(description: "\(path) belongs to uid \(st.st_uid)")
        }
        if strict && st.st_mode & 0o022 != 0 { throw Failure(description: "\(path) is writable by group or others") }
        guard st.st_size <= limit else { throw Failure(description: "\(path) is larger than \(limit) bytes") }
        var data = [UInt8](repeating: 0, count: Int(st.st_size))
        var got = 0
        while got < data.count {
            let n = data[got...].withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            got += n
        }
        return Array(data[0..<got])
    }

    private static func systemRead(_ fd: CInt, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.read(fd, buffer, count)
        #else
        Darwin.read(fd, buffer, count)
        #endif
    }
}
