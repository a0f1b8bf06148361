import QPQProtocol

/// What handling one request produced: the response, and the effects the driver carries out.
package struct QPQSessionOutput: Sendable, Equatable {
    package var response: QPQResponse
    /// Devices that have something new queued (push them).
    package var notify: [UInt64] = []
    /// This connection subscribed as this device: push its queue from the start.
    package var subscribe: UInt64?
    /// This device was revoked: tell its connections and close them.
    package var revoked: UInt64?

    package init(_ response: QPQResponse) { self.response = response }
}
