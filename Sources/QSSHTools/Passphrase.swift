import Foundation
import QSSHSession

/// Asks for a key's passphrase: on the terminal, or through the program named by SSH_ASKPASS
/// (as OpenSSH does: when there is no terminal, or always with SSH_ASKPASS_REQUIRE=force).
enum Passphrase {
    static func ask(_ prompt: String) -> String? {
        let env = ProcessInfo.processInfo.environment
        let hasTTY = FileManager.default.isReadableFile(atPath: "/dev/tty") && open("/dev/tty", O_RDWR | O_CLOEXEC).closingOnSuccess()
        if let askpass = env["SSH_ASKPASS"], !askpass.isEmpty, env["SSH_ASKPASS_REQUIRE"] == "force" || !hasTTY {
            guard let program = resolve(askpass, path: env["PATH"] ?? "/usr/bin:/bin") else {
                Terminal.warn("qssh: SSH_ASKPASS program '\(askpass)' not found")
                return nil
            }
            guard let child = try? ChildProcess.spawn([program, prompt], environment: env, directory: nil, inheritStderr: true) else { return nil }
            close(child.stdin)
            let answer = BlockingIO.readText(child.stdout)
            close(child.stdout)
            guard case .exited(0) = child.waitForExit() else { return nil }
            return answer.trimmingCharacters(in: .newlines)
        }
        return Terminal.prompt(prompt, secret: true)
    }

    /// An absolute path for `name` (searched on PATH when it has no slash), as a shell would.
    static func resolve(_ name: String, path: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

private extension Int32 {
    /// For an `open` result: true (and the descriptor closed) when it succeeded.
    func closingOnSuccess() -> Bool {
        guard self >= 0 else { return false }
        close(self)
        return true
    }
}
