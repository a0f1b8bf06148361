import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QPQProtocol
import QPQServer

/// Reads the queues of woken devices for push: requests that arrive while a read runs are
/// collected and read together in one transaction on the pool (a group message wakes every
/// member at once). Each answer goes back on the requesting connection's event loop.
package final class QPQPushBatcher: Sendable {
    package typealias Completion = @Sendable (Result<(envelopes: [QPQEnvelope], more: Bool), QPQServiceError>) -> Void

    private struct Request: Sendable {
        var device: UInt64
        var after: UInt64
        var loop: EventLoop
        var completion: Completion
    }

    private let store: any QPQStore
    private let pool: NIOThreadPool
    private let state = NIOLockedValueBox<(pending: [Request], running: Bool)>(([], false))
    /// At most this many devices per read transaction.
    static let batch = 256

    package init(store: any QPQStore, pool: NIOThreadPool) {
        self.store = store
        self.pool = pool
    }

    /// Queues a read of `device`'s envelopes above `after`; `completion` runs on `loop`.
    package func fetch(device: UInt64, after: UInt64, on loop: EventLoop, completion: @escaping Completion) {
        let start = state.withLockedValue { s -> Bool in
            s.pending.append(Request(device: device, after: after, loop: loop, completion: completion))
            if s.running { return false }
            s.running = true
            return true
        }
        guard start else { return }
        let store = self.store
        let state = self.state
        pool.runIfActive(eventLoop: loop) {
            while true {
                let requests = state.withLockedValue { s -> [Request] in
                    let taken = Array(s.pending.prefix(Self.batch))
                    s.pending.removeFirst(taken.count)
                    if taken.isEmpty { s.running = false }
                    return taken
                }
                if requests.isEmpty { return }
                do throws(QPQServiceError) {
                    let results = try store.fetchMany(requests.map { ($0.device, $0.after) }, limit: 100, maxBytes: QPQLimits.maxFetchBytes)
                    for (r, result) in zip(requests, results) { r.loop.execute { r.completion(.success(result)) } }
                } catch {
                    for r in requests { r.loop.execute { r.completion(.failure(error)) } }
                }
            }
        }.whenFailure { _ in
            // The pool is shutting down: fail what is left so no connection waits forever.
            let left = state.withLockedValue { s -> [Request] in
                defer { s.pending = []; s.running = false }
                return s.pending
            }
            for r in left { r.loop.execute { r.completion(.failure(QPQServiceError(.internal, "shutting down"))) } }
        }
    }
}
