#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Blocking driver that runs an `SFTPServer` over a pair of file descriptors
/// (the SSH "sftp" subsystem process). The descriptors are not closed.
public enum SFTPServerLoop {
    /// Exit codes of `run`.
    public static let exitClean: Int32 = 0
    public static let exitIOError: Int32 = 1
    public static let exitProtocolError: Int32 = 2

    /// Serves requests until EOF on `input`. Returns 0 on clean EOF, 1 on an I/O
    /// error or EOF in the middle of a packet, 2 on unrecoverable framing errors
    /// (zero-length or oversized packet). Ignores SIGPIPE process-wide.
    public static func run(input: CInt, output: CInt, root: String?, symlinkOrder: SFTPServer.SymlinkArgumentOrder = .targetFirst) -> Int32 {
        POSIX.ignoreSIGPIPE()
        let server = SFTPServer(root: root, symlinkOrder: symlinkOrder)
        defer { server.closeAll() }
        var reader = SFTPPacketReader()
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let n: Int
            do { n = try POSIX.readSome(input, &buffer) } catch { return exitIOError }
            if n == 0 { return reader.bufferedByteCount == 0 ? exitClean : exitIOError }
            reader.feed(buffer[0..<n])
            do {
                while let body = try reader.next() {
                    try POSIX.writeAll(output, server.handle(body))
                }
            } catch .packetTooLarge, .emptyPacket {
                return exitProtocolError
            } catch {
                return exitIOError
            }
        }
    }
}
