#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps the server's QUIC certificate next to its host key: `HOSTKEY.quic-cert.pem` and
/// `HOSTKEY.quic-key.pem` (both 0600), generated (self-signed ECDSA P-256) on first use.
/// The certificate only keys QUIC's packet protection; clients do not verify it, because QNSP
/// inside every stream authenticates the server by its host key (docs/protocol.md §8).
public enum QUICCertificateStore {
    public static func certificatePath(hostKeyPath: String) -> String { hostKeyPath + ".quic-cert.pem" }
    public static func keyPath(hostKeyPath: String) -> String { hostKeyPath + ".quic-key.pem" }

    /// Loads the pair, or makes and stores one when neither file exists.
    public static func loadOrCreate(hostKeyPath: String) throws -> QUICCredentials {
        let certPath = certificatePath(hostKeyPath: hostKeyPath)
        let keyPath = keyPath(hostKeyPath: hostKeyPath)
        let haveCert = access(certPath, F_OK) == 0
        let haveKey = access(keyPath, F_OK) == 0
        if haveCert != haveKey {
            throw QUICError.certificate("only one of \(certPath) and \(keyPath) exists; remove it to make a new pair")
        }
        if !haveCert {
            var pair = try QUICCredentials.generateSelfSigned()
            defer { for i in pair.key.indices { pair.key[i] = 0 } }
            try write(pair.key, to: keyPath)
            try write(pair.certificate, to: certPath)
        }
        var key = try read(keyPath)
        defer { for i in key.indices { key[i] = 0 } }
        let cert = try read(certPath)
        return try QUICCredentials(certificatePEM: cert, keyPEM: key)
    }

    /// Writes a new file with mode 0600 (through a temporary name, then rename).
    static func write(_ bytes: [UInt8], to path: String) throws {
        let tmp = path + ".tmp\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw QUICError.certificate("cannot create \(tmp) (errno \(errno))") }
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { systemWrite(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                close(fd)
                unlink(tmp)
                throw QUICError.certificate("cannot write \(tmp) (errno \(errno))")
            }
            off += n
        }
        guard fsync(fd) == 0, close(fd) == 0, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw QUICError.certificate("cannot store \(path) (errno \(errno))")
        }
    }

    static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw QUICError.certificate("cannot open \(path) (errno \(errno))") }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw QUICError.certificate("cannot read \(path) (errno \(errno))") }
            if n == 0 { break }
            result += chunk[0..<n]
            guard result.count <= 1 << 20 else { throw QUICError.certificate("\(path) is too large") }
        }
        return result
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
private let systemRead = Glibc.read
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
private let systemRead = Darwin.read
#endif
