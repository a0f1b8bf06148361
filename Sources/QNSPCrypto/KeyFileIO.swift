#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reading and writing key files with the permissions private keys need.
public enum KeyFileIO {
    /// Reads a private key file, refusing one that group or others can read or write.
    public static func readPrivateKey(path: String) throws(QNSPCryptoError) -> String {
        var st = stat()
        guard lstat(path, &st) == 0 else { throw .keyFileIO(path: path, reason: errnoText()) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .keyFileIO(path: path, reason: "not a regular file") }
        let mode = UInt32(st.st_mode) & 0o7777
        if mode & 0o077 != 0 { throw .keyFilePermissions(path: path, mode: mode) }
        return try readText(path: path, limit: 1 << 16)
    }

    /// Reads a small text file (public keys, known_hosts), at most `limit` bytes.
    public static func readText(path: String, limit: Int = 1 << 20) throws(QNSPCryptoError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .keyFileIO(path: path, reason: errnoText()) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .keyFileIO(path: path, reason: errnoText())
            }
            if n == 0 { break }
            out += chunk[0..<n]
            if out.count > limit { throw .keyFileIO(path: path, reason: "file is larger than \(limit) bytes") }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw .keyFileIO(path: path, reason: "not UTF-8 text") }
        return s
    }

    /// Reads exactly `count` bytes from the start of a file or device (e.g. an entropy source).
    public static func readExactly(path: String, count: Int) throws(QNSPCryptoError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .keyFileIO(path: path, reason: errnoText()) }
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, count - got) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .keyFileIO(path: path, reason: errnoText()) }
            if n == 0 { throw .keyFileIO(path: path, reason: "delivered \(got) of \(count) bytes") }
            got += n
        }
        return out
    }

    /// Writes `text` atomically (temporary file + rename) with `mode`, never following a symlink at `path`.
    public static func writeFile(_ text: String, path: String, mode: mode_t) throws(QNSPCryptoError) {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw .keyFileIO(path: tmp, reason: errnoText()) }
        var ok = fchmod(fd, mode) == 0
        let bytes = Array(text.utf8)
        var written = 0
        while ok && written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { ok = false; break }
            written += n
        }
        ok = ok && fsync(fd) == 0
        let reason = errnoText()
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            let r = ok ? errnoText() : reason
            unlink(tmp)
            throw .keyFileIO(path: path, reason: r)
        }
    }

    /// Writes a private key with mode 0600.
    public static func writePrivateKey(_ text: String, path: String) throws(QNSPCryptoError) {
        try writeFile(text, path: path, mode: 0o600)
    }

    /// Writes a public key with mode 0644.
    public static func writePublicKey(_ text: String, path: String) throws(QNSPCryptoError) {
        try writeFile(text, path: path, mode: 0o644)
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
