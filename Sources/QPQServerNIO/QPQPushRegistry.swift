import NIOConcurrencyHelpers

/// A connection that the registry can wake (new queued messages) or end (its device was revoked).
package protocol QPQPushSubscriber: AnyObject, Sendable {
    func wake()
    func revoked()
}

/// Which connections of this process speak for which device. It holds no delivery state: a wake-up
/// only says "look in the store", so a multi-node deployment replaces `notify` with a database
/// notification (PostgreSQL LISTEN/NOTIFY) and loses nothing if one is missed on reconnect.
package final class QPQPushRegistry: Sendable {
    private struct Entry {
        weak var subscriber: (any QPQPushSubscriber)?
    }

    private let entries = NIOLockedValueBox<[UInt64: [ObjectIdentifier: Entry]]>([:])

    package init() {}

    package func register(_ subscriber: any QPQPushSubscriber, device: UInt64) {
        entries.withLockedValue { $0[device, default: [:]][ObjectIdentifier(subscriber)] = Entry(subscriber: subscriber) }
    }

    package func unregister(_ subscriber: any QPQPushSubscriber, device: UInt64) {
        entries.withLockedValue { table in
            table[device]?[ObjectIdentifier(subscriber)] = nil
            if table[device]?.isEmpty == true { table[device] = nil }
        }
    }

    /// Connected devices (for the benchmark and tests).
    package var connectedDevices: Int { entries.withLockedValue { $0.count } }

    private func subscribers(_ device: UInt64) -> [any QPQPushSubscriber] {
        entries.withLockedValue { table in (table[device] ?? [:]).values.compactMap(\.subscriber) }
    }

    package func notify(_ devices: [UInt64]) {
        for d in devices { for s in subscribers(d) { s.wake() } }
    }

    /// Wakes every connected device (after notifications from other nodes may have been missed).
    package func notifyAll() {
        let all = entries.withLockedValue { table in table.values.flatMap { $0.values.compactMap(\.subscriber) } }
        for s in all { s.wake() }
    }

    package func revoke(_ device: UInt64) {
        for s in subscribers(device) { s.revoked() }
    }
}
