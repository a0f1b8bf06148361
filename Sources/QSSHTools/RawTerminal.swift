import CQSSHPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Puts a terminal in raw mode for an interactive session and restores it exactly.
public final class RawTerminal {
    private let fd: CInt
    private var saved = termios()
    private var active = false

    public init(fd: CInt = 0) { self.fd = fd }

    /// The terminal's size, or nil when `fd` is not a terminal.
    public static func windowSize(fd: CInt = 0) -> (rows: Int, columns: Int)? {
        var rows: UInt16 = 0, cols: UInt16 = 0
        guard qssh_get_winsize(fd, &rows, &cols) == 0, rows > 0, cols > 0 else { return nil }
        return (Int(rows), Int(cols))
    }

    /// Switches to raw mode (no echo, no line editing, no signals from keys: they go to the remote side).
    public func enable() {
        guard isatty(fd) == 1, tcgetattr(fd, &saved) == 0 else { return }
        var raw = saved
        cfmakeraw(&raw)
        if tcsetattr(fd, TCSADRAIN, &raw) == 0 { active = true }
    }

    /// Restores the saved mode; safe to call more than once.
    public func restore() {
        guard active else { return }
        active = false
        _ = tcsetattr(fd, TCSADRAIN, &saved)
    }

    deinit { restore() }
}
