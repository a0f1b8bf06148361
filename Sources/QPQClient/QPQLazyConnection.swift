import QPQProtocol

/// A qpq/1 connection opened on its first request: the client's sealed-sender connection
/// (docs/messaging.md §8), which carries `Send`, `Commit` and `SetDisappearing` (authorized by the
/// group token) and never logs in. One per client process; concurrent first calls share one
/// opening. A connection found closed before a request is replaced at once; one that fails during
/// a request is dropped, so the next request opens a new one (the failed request is not repeated:
/// it may have been accepted).
package actor QPQLazyConnection: QPQTransport {
    private let open: @Sendable () async throws(QPQClientError) -> QPQConnection
    private var opening: Task<Result<QPQConnection, QPQClientError>, Never>?

    /// `open` connects (a fresh random QNSP user key, as for every qpq connection) and must not log in.
    package init(open: @escaping @Sendable () async throws(QPQClientError) -> QPQConnection) {
        self.open = open
    }

    /// Whether a connection was opened (and not dropped since).
    package var isOpen: Bool { opening != nil }

    package func call(_ request: QPQRequest) async throws(QPQClientError) -> QPQResponse {
        var (task, connection) = try await current()
        if !connection.channel.isActive {
            // Closed while idle (by the server, or the network): nothing of this request was sent yet.
            drop(task)
            await connection.close()
            (task, connection) = try await current()
        }
        do {
            return try await connection.call(request)
        } catch {
            if case .connection = error {
                drop(task)
                await connection.close()
            }
            throw error
        }
    }

    /// The connection, opened now if there is none (concurrent callers share one opening).
    private func current() async throws(QPQClientError) -> (Task<Result<QPQConnection, QPQClientError>, Never>, QPQConnection) {
        let task: Task<Result<QPQConnection, QPQClientError>, Never>
        if let opening {
            task = opening
        } else {
            let open = self.open
            task = Task { () async -> Result<QPQConnection, QPQClientError> in
                do throws(QPQClientError) { return .success(try await open()) } catch { return .failure(error) }
            }
            opening = task
        }
        switch await task.value {
        case .success(let connection): return (task, connection)
        case .failure(let error):
            drop(task)
            throw error
        }
    }

    /// Forgets `task` if it is still the current opening (another call may have replaced it).
    private func drop(_ task: Task<Result<QPQConnection, QPQClientError>, Never>) {
        if opening == task { opening = nil }
    }

    /// Closes the connection if one was opened.
    package func close() async {
        guard let task = opening else { return }
        opening = nil
        if case .success(let connection) = await task.value { await connection.close() }
    }
}
