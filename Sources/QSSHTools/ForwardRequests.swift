import NIOCore
import QSSHSession

/// The `-L`, `-R` and `-D` arguments of one qssh run, parsed, and their start once the
/// connection is up (with ssh's messages: warnings, or exit with ExitOnForwardFailure).
struct ForwardRequests {
    var local: [ForwardSpec] = []
    var remote: [ForwardSpec] = []
    var dynamic: [ForwardSpec] = []

    init(local: [String], remote: [String], dynamic: [String]) throws {
        do {
            self.local = try local.map { text throws(ForwardSpec.ParseError) in try ForwardSpec.parse(forward: text) }
            self.remote = try remote.map { text throws(ForwardSpec.ParseError) in try ForwardSpec.parse(forward: text) }
            self.dynamic = try dynamic.map { text throws(ForwardSpec.ParseError) in try ForwardSpec.parse(dynamic: text) }
        } catch {
            throw ToolError(error.description)
        }
    }

    var isEmpty: Bool { local.isEmpty && remote.isEmpty && dynamic.isEmpty }

    /// Starts every forwarding; a failure is a warning, or fatal when `exitOnFailure`.
    func start(on connection: Channel, remote forwards: RemoteForwards?, exitOnFailure: Bool, verbose: Bool) throws {
        let log: @Sendable (String) -> Void = { Terminal.warn("qssh: " + $0) }
        for spec in local + dynamic {
            do {
                let forwarder = try LocalForwarder.start(spec: spec, connection: connection, log: verbose ? log : nil).wait()
                let what = spec.targetHost.map { "local forward to \($0):\(spec.targetPort)" } ?? "SOCKS proxy"
                if spec.bindPort == 0 {
                    Terminal.warn("Allocated port \(forwarder.boundPort) for \(what)")
                } else if verbose {
                    log("\(what) listening on \(spec.listenAddress()):\(forwarder.boundPort)")
                }
            } catch {
                let message = "cannot listen on \(spec.listenAddress()) port \(spec.bindPort) (\(spec.targetHost == nil ? "-D" : "-L") \(spec)): \(ConnectErrorText.describe(error))"
                if exitOnFailure { throw ToolError(message) }
                log("warning: " + message)
            }
        }
        guard let forwards else { return }
        for spec in remote {
            do {
                let port = try forwards.request(spec, on: connection).wait()
                if spec.bindPort == 0 {
                    Terminal.warn("Allocated port \(port) for remote forward to \(spec.targetHost ?? ""):\(spec.targetPort)")
                } else if verbose {
                    log("remote forward listening on port \(port)")
                }
            } catch {
                let message = "remote port forwarding failed for listen port \(spec.bindPort) (-R \(spec)): \(ForwardingRelay.describe(error))"
                if exitOnFailure { throw ToolError(message) }
                log("warning: " + message)
            }
        }
    }
}
