import ArgumentParser
import CQSSHPosix
import Foundation
import NIOConcurrencyHelpers
import QNSPCrypto

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `qssh -T -s HOST SUBSYSTEM` session run by qssh's own client code on a thread of this process,
/// so that qscp and qsftp are one process: the client's stdin and stdout are one end of a socket
/// pair and the caller reads and writes the other end (`fd`). The arguments go through the same
/// ~/.qssh/config expansion and option parsing as the qssh executable's.
final class InProcessSession: Sendable {
    /// The caller's end of the socket pair: the subsystem's byte stream.
    let fd: CInt
    private let clientEnd: CInt
    private let status = NIOLockedValueBox<Int32?>(nil)
    private let done = DispatchSemaphore(value: 0)

    private init(fd: CInt, clientEnd: CInt) {
        self.fd = fd
        self.clientEnd = clientEnd
    }

    /// Starts the client with qssh's command line `arguments` (without the program name); failures
    /// are reported on stderr as `name: message`, as the qssh executable would report them.
    static func start(arguments: [String], name: String) throws -> InProcessSession {
        limitMallocArenas()
        var fds: [CInt] = [-1, -1]
        #if canImport(Glibc)
        let type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        #else
        let type = SOCK_STREAM
        #endif
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else {
            throw ToolError("socketpair: \(String(cString: strerror(errno)))")
        }
        let session = InProcessSession(fd: fds[0], clientEnd: fds[1])
        let clientEnd = fds[1]
        let thread = Thread {
            let code = Self.runClient(
                arguments: arguments,
                name: name,
                stdio: .init(input: clientEnd, output: clientEnd)
            )
            session.status.withLockedValue { $0 = code }
            // The caller sees end of file; a stdin pump still reading this end wakes up with one too.
            shutdown(clientEnd, CInt(SHUT_RDWR))
            session.done.signal()
        }
        thread.name = "qssh client"
        thread.start()
        return session
    }

    /// One malloc arena for the whole process, set before the client's threads start. glibc gives
    /// each thread that allocates an arena of its own (up to 8 per core), and qscp's threads (SFTP
    /// on the main thread, the stdin pump, the event loop, the client thread) each kept a few
    /// hundred kB of dirty heap there; one arena costs no measurable copy speed (qnsp-bench --copy).
    private static func limitMallocArenas() {
        _ = qssh_limit_malloc_arenas(1)
    }

    /// Closes the caller's end (the subsystem sees end of input), waits for the client to finish and
    /// returns its exit status (0, the remote status, or 255 when the connection failed).
    func waitForExit() -> Int32 {
        shutdown(fd, CInt(SHUT_WR))
        done.wait()
        close(fd)
        close(clientEnd)
        return status.withLockedValue { $0 } ?? 255
    }

    /// Parses and runs qssh in this thread; returns what the qssh executable's exit status would be.
    static func runClient(arguments: [String], name: String, stdio: QSSHCommand.Stdio) -> Int32 {
        do {
            let expanded = try QSSHClientConfig.expand(arguments, forTunnel: false)
            let command = try QSSHCommand.parse(expanded)
            try command.run(stdio: stdio)
            return 0
        } catch let e as ToolError {
            Terminal.warn("\(name): \(PrintableText.escapedKeepingLines(e.description))")
            return 255
        } catch let e as ExitCode {
            return e.rawValue
        } catch {
            Terminal.warn("\(name): \(PrintableText.escapedKeepingLines(QSSHCommand.message(for: error)))")
            return 255
        }
    }
}
