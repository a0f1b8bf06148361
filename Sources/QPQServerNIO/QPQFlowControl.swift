/// How much one qpq/1 connection may make the server hold before it stops reading from the socket
/// (docs/messaging.md §1): bytes of requests received but not yet answered, and large (over 2 MiB)
/// frames among them. Reading resumes once answers have drained the queue below the budget.
package struct QPQFlowControl: Sendable {
    /// Bytes held per connection: queued and running request bodies plus a partly received frame.
    package var maxHeldBytes: Int
    /// Large frames (`Commit` over ``QPQProtocol/QPQLimits/maxFrame``) queued or running before the
    /// next large frame's body is read.
    package var maxLargeInFlight: Int
    /// Test hook: runs on the thread pool before each request is handled.
    package var beforeRequest: (@Sendable () -> Void)?
    /// Test hook: on the event loop, whenever the held byte count or the paused state changes.
    package var observe: (@Sendable (_ heldBytes: Int, _ paused: Bool) -> Void)?

    package init(maxHeldBytes: Int = 32 * 1024 * 1024, maxLargeInFlight: Int = 1,
                 beforeRequest: (@Sendable () -> Void)? = nil, observe: (@Sendable (Int, Bool) -> Void)? = nil) {
        self.maxHeldBytes = maxHeldBytes
        self.maxLargeInFlight = max(1, maxLargeInFlight)
        self.beforeRequest = beforeRequest
        self.observe = observe
    }
}
