import Dispatch
import NIOConcurrencyHelpers

/// Runs async work from a synchronous command's `run()` (the main thread of a CLI process, never a
/// Swift concurrency pool thread), waiting at most `seconds`.
enum BlockingAsync {
    struct TimedOut: Error, CustomStringConvertible {
        let seconds: Int
        var description: String { "gave up after \(seconds) s" }
    }

    static func run<T: Sendable>(seconds: Int = 300, _ body: @escaping @Sendable () async throws -> T) throws -> T {
        let result = NIOLockedValueBox<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let task = Task {
            let r: Result<T, any Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            result.withLockedValue { $0 = r }
            done.signal()
        }
        guard done.wait(timeout: .now() + .seconds(seconds)) == .success else {
            task.cancel()
            throw TimedOut(seconds: seconds)
        }
        guard let r = result.withLockedValue({ $0 }) else { throw TimedOut(seconds: seconds) }
        return try r.get()
    }
}
