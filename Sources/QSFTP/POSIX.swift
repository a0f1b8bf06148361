#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small synchronous POSIX helpers shared by the client, server and loop.
enum POSIX {
    static func errorText(_ e: Int32) -> String { String(cString: strerror(e)) }

    /// Writes all bytes, retrying on EINTR and partial writes.
    static func writeAll(_ fd: CInt, _ bytes: [UInt8]) throws(SFTPError) {
        let failure: SFTPError? = bytes.withUnsafeBytes { raw in
            do throws(SFTPError) { try writeAll(fd, raw) } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }

    /// Writes all bytes of a raw buffer, retrying on EINTR and partial writes.
    static func writeAll(_ fd: CInt, _ bytes: UnsafeRawBufferPointer) throws(SFTPError) {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress.map { $0 + done }, bytes.count - done)
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                if e == EPIPE { throw .connectionClosed }
                throw .io(e, "write")
            }
            done += n
        }
    }

    /// Reads whatever is available into `buffer`; returns the byte count, 0 at EOF.
    static func readSome(_ fd: CInt, _ buffer: inout [UInt8]) throws(SFTPError) -> Int {
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n >= 0 { return n }
            let e = errno
            if e != EINTR { throw .io(e, "read") }
        }
    }

    /// Ignores SIGPIPE so that writes to a closed peer fail with EPIPE instead of killing the process.
    static func ignoreSIGPIPE() { _ = signal(SIGPIPE, SIG_IGN) }
}

extension POSIX {
    static func closeFD(_ fd: CInt) { _ = close(fd) }

    /// pread until `count` bytes or EOF; returns bytes read.
    static func preadFull(_ fd: CInt, _ buffer: inout [UInt8], count: Int, offset: UInt64) throws(SFTPError) -> Int {
        guard let start = off_t(exactly: offset) else { throw .invalidArgument("offset \(offset) out of range") }
        var got = 0
        while got < count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress.map { $0 + got }, count - got, start + off_t(got)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(errno, "read local file")
            }
            if n == 0 { break }
            got += n
        }
        return got
    }

    /// pwrite all bytes at `offset`; `what` names the operation in an I/O error.
    static func pwriteAll(_ fd: CInt, _ bytes: [UInt8], offset: UInt64, what: String = "write local file") throws(SFTPError) {
        guard let start = off_t(exactly: offset) else { throw .invalidArgument("offset \(offset) out of range") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress.map { $0 + done }, $0.count - done, start + off_t(done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(errno, what)
            }
            done += n
        }
    }
}
