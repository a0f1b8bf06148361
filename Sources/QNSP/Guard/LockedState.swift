import Foundation

#if canImport(FoundationEssentials)
import FoundationEssentials
#endif

/// State shared between threads, behind a pthread mutex (`NSLock`). Used instead of
/// `Synchronization.Mutex`, whose futex-based lock ThreadSanitizer cannot see on Linux (every
/// access under it is reported as a race), so that TSan runs stay meaningful.
final class LockedState<State>: @unchecked Sendable {
    private let lock = NSLock()
    private var state: State

    init(_ state: State) { self.state = state }

    func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }
}
