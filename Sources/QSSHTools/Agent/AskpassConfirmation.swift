import Foundation
import QNSPCrypto
import QSSHSession

/// Asks the user to confirm a key's use through the program named by SSH_ASKPASS, as
/// OpenSSH's agent does: the prompt is its argument, SSH_ASKPASS_PROMPT=confirm is set, and
/// only an exit status of 0 is a yes. No SSH_ASKPASS means no.
package enum AskpassConfirmation {
    package static func ask(
        _ prompt: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> Bool {
        guard let askpass = environment["SSH_ASKPASS"], !askpass.isEmpty,
            let program = Passphrase.resolve(askpass, path: environment["PATH"] ?? "/usr/bin:/bin")
        else { return false }
        var env = environment
        env["SSH_ASKPASS_PROMPT"] = "confirm"
        let text = PrintableText.escapedKeepingLines(prompt)
        guard
            let child = try? ChildProcess.spawn([program, text], environment: env, directory: nil, inheritStderr: true)
        else {
            return false
        }
        close(child.stdin)
        let answer = BlockingIO.readText(child.stdout).trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        close(child.stdout)
        guard case .exited(0) = child.waitForExit() else { return false }
        // An askpass that prints an answer must not print a refusal.
        return answer.isEmpty || answer == "yes" || answer == "y"
    }
}
