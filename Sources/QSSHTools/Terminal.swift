#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Small terminal helpers for prompts: secrets read with echo off from /dev/tty.
public enum Terminal {
    public static var stdinIsTTY: Bool { isatty(0) == 1 }

    /// Prints `prompt` to /dev/tty and reads a line; with `secret`, echo is turned off.
    /// Returns nil when there is no terminal.
    public static func prompt(_ prompt: String, secret: Bool) -> String? {
        let fd = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var old = termios()
        let haveTermios = tcgetattr(fd, &old) == 0
        if secret && haveTermios {
            var noEcho = old
            noEcho.c_lflag &= ~tcflag_t(ECHO)
            _ = tcsetattr(fd, TCSAFLUSH, &noEcho)
        }
        defer {
            if secret && haveTermios {
                _ = tcsetattr(fd, TCSAFLUSH, &old)
                _ = "\n".withCString { write(fd, $0, 1) }
            }
        }
        _ = prompt.withCString { write(fd, $0, strlen($0)) }
        var line: [UInt8] = []
        var c: UInt8 = 0
        while read(fd, &c, 1) == 1 {
            if c == 10 || c == 13 { break }
            line.append(c)
            if line.count > 4096 { break }
        }
        return String(decoding: line, as: UTF8.self)
    }

    /// Writes a line to standard error.
    public static func warn(_ text: String) {
        let line = text + "\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }
}
