import QPQClient
import QPQProtocol

/// A transport that records the name of every request it carries, then passes it on.
actor RecordingTransport: QPQTransport {
    private let inner: any QPQTransport
    private(set) var names: [String] = []

    init(_ inner: any QPQTransport) { self.inner = inner }

    func call(_ request: QPQRequest) async throws(QPQClientError) -> QPQResponse {
        names.append(request.name)
        return try await inner.call(request)
    }
}
