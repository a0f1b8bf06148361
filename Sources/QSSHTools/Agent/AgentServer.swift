import CQSSHAgentPosix
import Foundation
import NIOConcurrencyHelpers
import QSSHAgent

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// qssh-agent's socket side: listens on a Unix socket (mode 0600), checks each peer's uid
/// (SO_PEERCRED), and serves each connection on a thread of its own, driving the shared
/// ``AgentState`` with blocking reads — an agent has a handful of local clients, and a
/// confirmation prompt may hold one of them for as long as the user takes.
package final class AgentServer: Sendable {
    /// What the server needs from the outside world; tests replace the clock, the peer
    /// credentials and the confirmation.
    package struct Configuration: Sendable {
        package var socketPath: String
        /// Seconds on a monotonic clock (key lifetimes count on it).
        package var clock: @Sendable () -> UInt64 = AgentServer.monotonicSeconds
        /// The peer's uid on an accepted socket; nil when it cannot be read.
        package var peerUID: @Sendable (CInt) -> UInt32? = AgentServer.socketPeerUID
        package var ownUID: UInt32 = UInt32(getuid())
        /// Asks the user whether a confirm-constrained key may sign (default: SSH_ASKPASS).
        package var confirm: @Sendable (AgentConfirmation) -> Bool = { AskpassConfirmation.ask($0.prompt) }
        /// Where refusals are reported (qssh-agent -D: stderr).
        package var log: @Sendable (String) -> Void = { _ in }
        /// Delay after a wrong unlock passphrase, per failure so far (capped at 10 s).
        package var unlockPenalty: Double = 0.1

        package init(socketPath: String) { self.socketPath = socketPath }
    }

    private let configuration: Configuration
    private let state = NIOLockedValueBox(AgentState())
    private let listenFD: CInt
    private let stopped = NIOLockedValueBox(false)
    private let acceptDone = ConditionLock(value: false)

    /// Binds the socket (which must not exist yet) and starts accepting.
    package init(configuration: Configuration) throws(AgentError) {
        self.configuration = configuration
        let fd = qssh_agent_listen_unix(configuration.socketPath, 16)
        guard fd >= 0 else { throw .transport("bind \(configuration.socketPath): \(String(cString: strerror(errno)))") }
        listenFD = fd
        Thread.detachNewThread { [self] in acceptLoop() }
        Thread.detachNewThread { [self] in sweepLoop() }
    }

    /// Stops accepting, removes the socket and wipes every key. Connections being served end
    /// at their next request.
    package func stop() {
        let first = stopped.withLockedValue { was in
            defer { was = true }
            return !was
        }
        guard first else { return }
        shutdown(listenFD, Int32(SHUT_RDWR))
        acceptDone.lock(whenValue: true)
        acceptDone.unlock()
        close(listenFD)
        unlink(configuration.socketPath)
        state.withLockedValue { $0 = AgentState() }
    }

    private var isStopped: Bool { stopped.withLockedValue { $0 } }

    // MARK: Threads

    private func acceptLoop() {
        defer {
            acceptDone.lock()
            acceptDone.unlock(withValue: true)
        }
        while !isStopped {
            let fd = qssh_agent_accept(listenFD)
            if fd < 0 {
                if errno == ECONNABORTED || errno == EMFILE || errno == ENFILE { continue }
                return
            }
            guard AgentPeerPolicy.allows(peerUID: configuration.peerUID(fd), ownUID: configuration.ownUID) else {
                configuration.log(
                    "refused a connection from uid \(configuration.peerUID(fd).map(String.init) ?? "unknown")"
                )
                close(fd)
                continue
            }
            Thread.detachNewThread { [self] in serve(fd) }
        }
    }

    /// Drops expired keys from memory even when nobody asks (requests also check).
    private func sweepLoop() {
        while !isStopped {
            let now = configuration.clock()
            state.withLockedValue { $0.expire(now: now) }
            Thread.sleep(forTimeInterval: 1)
        }
    }

    private func serve(_ fd: CInt) {
        var connection = AgentConnection(fd: fd)
        defer { connection.close() }
        while !isStopped {
            let frame: [UInt8]?
            do {
                frame = try connection.receive()
            } catch {
                configuration.log("closing a connection: \(error)")
                return
            }
            guard let frame else { return }
            let response: AgentResponse
            do {
                response = try handle(AgentRequest(frame: frame))
            } catch {
                // A malformed message is answered like any refusal; the stream stays in step
                // because the framing itself was sound.
                configuration.log("\(error)")
                response = .failure
            }
            guard !isStopped else { return }
            do {
                try connection.send(response.encoded())
            } catch {
                return
            }
        }
    }

    private func handle(_ request: AgentRequest) -> AgentResponse {
        let now = configuration.clock()
        let action = state.withLockedValue { $0.handle(request, now: now) }
        switch action {
        case .reply(let response, let note):
            if let note { configuration.log(note) }
            if case .unlock = request, response == .failure {
                let failures = state.withLockedValue { $0.failedUnlocks }
                Thread.sleep(forTimeInterval: min(10, configuration.unlockPenalty * Double(failures)))
            }
            return response
        case .confirm(let confirmation):
            guard configuration.confirm(confirmation) else {
                configuration.log("use of \(confirmation.fingerprint) not confirmed")
                return .failure
            }
            let later = configuration.clock()
            return state.withLockedValue { $0.signConfirmed(confirmation, now: later) }
        }
    }

    // MARK: Defaults

    package static func monotonicSeconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec)
    }

    package static func socketPeerUID(_ fd: CInt) -> UInt32? {
        var uid: UInt32 = 0
        return qssh_agent_peer_uid(fd, &uid) == 0 ? uid : nil
    }
}
