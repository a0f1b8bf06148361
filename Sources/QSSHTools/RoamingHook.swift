import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import QNSPQUIC

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The roaming test hook of `TunnelClient` (`QSSH_TEST_QUIC_REBIND=SIGUSR2`): each SIGUSR2 moves
/// the QUIC endpoint to a fresh UDP socket. The session does not notice; only `-v` reports the
/// new path.
enum RoamingHook {
    private static let sources = NIOLockedValueBox<[SignalSource]>([])

    /// Keeps a dispatch signal source alive for the life of the process.
    private final class SignalSource: @unchecked Sendable {
        let source: DispatchSourceSignal
        init(_ source: DispatchSourceSignal) { self.source = source }
    }

    static func install(endpoint: QUICEndpoint, verbose: Bool, toolName: String) {
        signal(SIGUSR2, SIG_IGN)  // delivered to the dispatch source instead
        let source = DispatchSource.makeSignalSource(signal: SIGUSR2)
        source.setEventHandler {
            endpoint.rebind().whenComplete { result in
                switch result {
                case .success(let local):
                    if verbose { Terminal.warn("\(toolName): QUIC path moved to local port \(local.port ?? 0) (connection migration)") }
                case .failure(let error):
                    if verbose { Terminal.warn("\(toolName): QUIC path change failed: \(error)") }
                }
            }
        }
        source.resume()
        sources.withLockedValue { $0.append(SignalSource(source)) }
    }
}
