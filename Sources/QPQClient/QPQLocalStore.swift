import CSodium
import Crypto
import Foundation

/// The client's state file, encrypted under a key from the passphrase (docs/messaging.md §10):
///
///     "QPQS" || u8 version = 1 || salt[16] || u32 memoryKiB || u32 iterations || nonce[12] || AES-256-GCM(state) || tag[16]
///
/// key = Argon2id(passphrase, salt, t = iterations, m = memoryKiB); the header is the AEAD's
/// associated data. Written with mode 0600 through a temporary file and a rename.
package enum QPQLocalStore {
    package enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case io(String)
        case format(String)
        /// Wrong passphrase or a changed file (the two cannot be told apart).
        case cannotDecrypt
        case kdf

        package var description: String {
            switch self {
            case .io(let what): return what
            case .format(let what): return "not a qpq store: \(what)"
            case .cannotDecrypt: return "cannot decrypt the store: wrong passphrase, or the file was changed"
            case .kdf: return "Argon2id failed (out of memory?)"
            }
        }
    }

    static let magic: [UInt8] = Array("QPQS".utf8)

    /// Unix time in milliseconds (disappearing messages are pruned on every load and save).
    package static func wallClockMilliseconds() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }
    /// Argon2id costs of new files (the same as qpq's OPAQUE KSF: 64 MiB, 3 passes).
    package static let defaultMemoryKiB: UInt32 = 64 * 1024
    package static let defaultIterations: UInt32 = 3
    static let headerSize = 4 + 1 + 16 + 4 + 4 + 12

    static func deriveKey(_ passphrase: String, salt: [UInt8], memoryKiB: UInt32, iterations: UInt32) throws(Failure) -> SymmetricKey {
        guard csodium_init() == 0, memoryKiB >= 8, memoryKiB <= 4 * 1024 * 1024, iterations >= 1, iterations <= 64 else { throw .kdf }
        var key = [UInt8](repeating: 0, count: 32)
        let pw = Array(passphrase.utf8)
        let status = key.withUnsafeMutableBufferPointer { k in
            pw.withUnsafeBufferPointer { p in
                salt.withUnsafeBufferPointer { s in
                    csodium_argon2id(k.baseAddress, 32, p.baseAddress, p.count, s.baseAddress, UInt64(iterations), Int(memoryKiB) * 1024)
                }
            }
        }
        guard status == 0 else { throw .kdf }
        defer { key.withUnsafeMutableBytes { csodium_memzero($0.baseAddress, $0.count) } }
        return SymmetricKey(data: key)
    }

    package static func seal(_ state: QPQClientState, passphrase: String, memoryKiB: UInt32 = defaultMemoryKiB,
                             iterations: UInt32 = defaultIterations) throws(Failure) -> [UInt8] {
        var state = state
        state.prune(now: wallClockMilliseconds())
        let plain: Data
        do { plain = try JSONEncoder().encode(state) } catch { throw .format("cannot encode: \(error)") }
        var salt = [UInt8](repeating: 0, count: 16)
        var nonce = [UInt8](repeating: 0, count: 12)
        csodium_randombytes(&salt, 16)
        csodium_randombytes(&nonce, 12)
        var header = magic + [1] + salt
        for v in [memoryKiB, iterations] { header += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        header += nonce
        let key = try deriveKey(passphrase, salt: salt, memoryKiB: memoryKiB, iterations: iterations)
        do {
            let box = try AES.GCM.seal(plain, using: key, nonce: try AES.GCM.Nonce(data: nonce), authenticating: header)
            return header + Array(box.ciphertext) + Array(box.tag)
        } catch {
            throw .format("cannot encrypt: \(error)")
        }
    }

    package static func open(_ bytes: [UInt8], passphrase: String) throws(Failure) -> QPQClientState {
        guard bytes.count >= headerSize + 16, Array(bytes[0..<4]) == magic else { throw .format("bad magic or too short") }
        guard bytes[4] == 1 else { throw .format("version \(bytes[4])") }
        let salt = Array(bytes[5..<21])
        func u32(_ at: Int) -> UInt32 { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        let memoryKiB = u32(21), iterations = u32(25)
        let nonce = Array(bytes[29..<41])
        let header = Array(bytes[0..<headerSize])
        let key = try deriveKey(passphrase, salt: salt, memoryKiB: memoryKiB, iterations: iterations)
        let plain: Data
        do {
            let box = try AES.GCM.SealedBox(nonce: try AES.GCM.Nonce(data: nonce), ciphertext: bytes[headerSize..<(bytes.count - 16)],
                                            tag: bytes[(bytes.count - 16)...])
            plain = try AES.GCM.open(box, using: key, authenticating: header)
        } catch {
            throw .cannotDecrypt
        }
        do {
            var state = try JSONDecoder().decode(QPQClientState.self, from: plain)
            state.prune(now: wallClockMilliseconds())
            return state
        } catch {
            throw .format("cannot decode: \(error)")
        }
    }

    package static func load(path: String, passphrase: String) throws(Failure) -> QPQClientState {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io("cannot read \(path)") }
        return try open(Array(data), passphrase: passphrase)
    }

    package static func save(_ state: QPQClientState, path: String, passphrase: String, memoryKiB: UInt32 = defaultMemoryKiB,
                             iterations: UInt32 = defaultIterations) throws(Failure) {
        let bytes = try seal(state, passphrase: passphrase, memoryKiB: memoryKiB, iterations: iterations)
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let temp = path + ".tmp"
        unlink(temp)
        let fd = Foundation.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io("cannot create \(temp): \(String(cString: strerror(errno)))") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return -1 }
                return write(fd, base + done, raw.count - done)
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { close(fd); unlink(temp); throw .io("cannot write \(temp)") }
            done += n
        }
        fsync(fd)
        close(fd)
        guard rename(temp, path) == 0 else { unlink(temp); throw .io("cannot rename \(temp) to \(path)") }
    }
}
