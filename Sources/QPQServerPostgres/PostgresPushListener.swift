import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import QPQServer

/// Receives the notifications of every node's ``PostgresStore`` (LISTEN on ``PostgresStore/channel``)
/// on a connection of its own, and hands them to `handler` on an event loop (the handler must not
/// block). Notifications carry no delivery state: they only say "look in the store". If the
/// connection drops, it reports ``Event/disconnected``, reconnects (after 0.1 s, doubling up to 5 s)
/// and, once listening again, reports ``Event/resync``: the node wakes every connected device, since
/// notifications sent while it was not listening are lost.
package final class PostgresPushListener: Sendable {
    /// What a notification asks this node to do.
    package enum Event: Sendable, Equatable {
        /// These devices have something new queued.
        case deliver([UInt64])
        /// This device was revoked: end its connections.
        case revoke(UInt64)
        /// The LISTEN connection was lost; the listener is reconnecting (for the log).
        case disconnected
        /// Listening again after ``disconnected``; notifications may have been missed: wake every connected device.
        case resync
    }

    private struct State {
        var connection: PostgresConnection?
        var stopped = false
        var delay: TimeAmount = .milliseconds(100)
        var scheduled: Scheduled<Void>?
    }

    private let location: PostgresLocation
    private let skipNode: String?
    private let loop: any EventLoop
    private let handler: @Sendable (Event) -> Void
    private let state = NIOLockedValueBox(State())
    private let logger: Logger

    /// Listens for `store`'s database; notifications of `store`'s own node are skipped (the node
    /// woke its devices itself). Blocks until the first LISTEN is in place (not for an event loop).
    package convenience init(store: PostgresStore, handler: @escaping @Sendable (Event) -> Void) throws(QPQServiceError) {
        try self.init(location: store.location, loop: store.group.next(), skipNode: store.node, handler: handler)
    }

    init(location: PostgresLocation, loop: any EventLoop, skipNode: String?, handler: @escaping @Sendable (Event) -> Void) throws(QPQServiceError) {
        self.location = location
        self.loop = loop
        self.skipNode = skipNode
        self.handler = handler
        var logger = Logger(label: "qpqd.postgres.listen")
        logger.logLevel = .critical
        self.logger = logger
        do {
            try connect().wait()
        } catch {
            throw QPQServiceError(.internal, "cannot LISTEN on \(location.host):\(location.port): \(error)")
        }
    }

    /// Parses "NODE d ID,ID,..." or "NODE r ID"; nil for anything else (or this node's own).
    static func parse(_ payload: String, skipNode: String?) -> Event? {
        let words = payload.split(separator: " ", omittingEmptySubsequences: false)
        guard words.count == 3, String(words[0]) != skipNode else { return nil }
        let ids = words[2].split(separator: ",").compactMap { UInt64($0) }
        guard !ids.isEmpty else { return nil }
        switch words[1] {
        case "d": return .deliver(ids)
        case "r": return ids.count == 1 ? .revoke(ids[0]) : nil
        default: return nil
        }
    }

    private func connect() -> EventLoopFuture<Void> {
        let skip = skipNode, handler = self.handler, logger = self.logger
        return PostgresConnection.connect(on: loop, configuration: location.configuration, id: 0, logger: logger).flatMap { connection in
            connection.addListener(channel: PostgresStore.channel) { _, note in
                if let event = Self.parse(note.payload, skipNode: skip) { handler(event) }
            }
            return connection.query(PostgresQuery(unsafeSQL: "LISTEN \(PostgresStore.channel)"), logger: logger).map { _ in
                let keep = self.state.withLockedValue { s -> Bool in
                    guard !s.stopped else { return false }
                    s.connection = connection
                    s.delay = .milliseconds(100)
                    return true
                }
                guard keep else { connection.closeInBackground(); return }
                connection.closeFuture.whenComplete { _ in self.reconnectLater() }
            }.flatMapErrorThrowing { error in
                connection.closeInBackground()
                throw error
            }
        }
    }

    private func reconnectLater() {
        let (delay, lost) = state.withLockedValue { s -> (TimeAmount?, Bool) in
            let lost = s.connection != nil
            s.connection = nil
            guard !s.stopped else { return (nil, false) }
            let d = s.delay
            s.delay = min(s.delay * 2, .seconds(5))
            return (d, lost)
        }
        guard let delay else { return }
        if lost { handler(.disconnected) }
        let task = loop.scheduleTask(in: delay) {
            self.connect().whenComplete { result in
                switch result {
                case .success: self.handler(.resync)
                case .failure: self.reconnectLater()
                }
            }
        }
        state.withLockedValue { $0.scheduled = task }
    }

    /// Stops listening and closes the connection (blocking; not for an event loop).
    package func stop() {
        let (connection, scheduled) = state.withLockedValue { s -> (PostgresConnection?, Scheduled<Void>?) in
            s.stopped = true
            defer { s.connection = nil; s.scheduled = nil }
            return (s.connection, s.scheduled)
        }
        scheduled?.cancel()
        if let connection { try? (connection.close() as EventLoopFuture<Void>).wait() }
    }
}
