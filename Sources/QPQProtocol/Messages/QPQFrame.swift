/// One frame body: a message with the request id that pairs a response with its request.
public struct QPQFrame: Sendable, Equatable {
    /// Chosen by the client (≠ 0) and echoed by the response; 0 for pushes.
    public var requestId: UInt32
    public var message: QPQMessage

    public init(requestId: UInt32, message: QPQMessage) {
        self.requestId = requestId
        self.message = message
    }
}
