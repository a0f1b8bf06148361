import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Blocking file-descriptor I/O for the terminal side of client tools: stdin and stdout may be
/// regular files or terminals, which an event loop cannot poll.
public enum BlockingIO {
    /// Writes all readable bytes of `buffer` to `fd`, retrying on EINTR; false when the write fails.
    public static func writeAll(_ fd: CInt, _ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                off += n
            }
            return true
        }
    }

    /// Reads `fd` (blocking, retrying on EINTR) until end of file, or until `stop` says the text
    /// read so far is enough; returns the text.
    public static func readText(_ fd: CInt, until stop: ((String) -> Bool)? = nil) -> String {
        var data = [UInt8](), chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data += chunk[0..<n]
            if let stop, stop(String(decoding: data, as: UTF8.self)) { break }
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads `fd` on a thread of its own and writes each chunk, wrapped by `wrap`, into `channel`,
    /// waiting for each write to complete (backpressure); half-closes the channel at end of file.
    ///   - escapes: when set, typed bytes go through it and `~.` closes the channel (interactive sessions).
    ///   - chunkSize: 96 KiB by default: an SSH packet of it plus its header fits swift-nio-ssh's
    ///     128 KiB maximum and a 128 KiB buffer, and so do its QNSP cells (128 KiB chunks made both
    ///     buffers grow to 256 KiB: 0.3 MB more peak heap per qscp, qnsp-bench --copy).
    public static func pump(
        _ fd: CInt, into channel: Channel, chunkSize: Int = 96 * 1024, escapes: EscapeScanner? = nil,
        onDisconnect: (@Sendable () -> Void)? = nil, wrap: @escaping @Sendable (ByteBuffer) -> any Sendable
    ) {
        let thread = Thread {
            var scanner = escapes
            while true {
                // Read straight into the buffer that is written (no intermediate copy).
                var buffer = channel.allocator.buffer(capacity: chunkSize)
                var n = 0, interrupted = false
                repeat {
                    _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: chunkSize) { raw in
                        n = read(fd, raw.baseAddress, chunkSize)
                        interrupted = n < 0 && errno == EINTR
                        return max(0, n)
                    }
                } while interrupted
                if n <= 0 { break }
                var disconnect = false
                if scanner != nil, let (out, action) = scanner?.feed(buffer.readBytes(length: n) ?? []) {
                    buffer = channel.allocator.buffer(bytes: out)
                    disconnect = action == .disconnect
                }
                if buffer.readableBytes > 0 {
                    do { try channel.writeAndFlush(wrap(buffer)).wait() } catch { return }
                }
                if disconnect {
                    onDisconnect?()
                    channel.close(promise: nil)
                    return
                }
            }
            channel.close(mode: .output, promise: nil)
        }
        thread.start()
    }
}
