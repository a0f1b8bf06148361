import ArgumentParser
import QNSPCrypto

#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif

/// Entry point shared by the executables: parses, runs, and reports errors as `tool: message`.
public enum ToolMain {
    public static func run<C: ParsableCommand>(_ command: C.Type, name: String, failureStatus: Int32 = 1, arguments: [String]? = nil) -> Never {
        resetSignalMask()
        do {
            var parsed = try C.parseAsRoot(arguments)
            try parsed.run()
            exit(0)
        } catch let e as ToolError {
            // Messages quote what peers and files said: no control character reaches the terminal.
            Terminal.warn("\(name): \(PrintableText.escapedKeepingLines(e.description))")
            exit(failureStatus)
        } catch let e as ExitCode {
            exit(e.rawValue)
        } catch {
            C.exit(withError: error)
        }
    }

    /// Reports a failure that happened before parsing (e.g. a bad configuration file) and exits.
    public static func fail(name: String, _ message: String, status: Int32 = 1) -> Never {
        Terminal.warn("\(name): \(PrintableText.escapedKeepingLines(message))")
        exit(status)
    }

    /// A parent may have spawned us with signals blocked (posix_spawn inherits the mask);
    /// a server that cannot be stopped with SIGTERM is a surprise, so start from a clean mask.
    static func resetSignalMask() {
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)
    }
}
