/// The lines of `qpqd --log-requests` (docs/messaging.md §8): `qpqd: conn N login=STATE Request outcome`.
struct QPQDRequestLog {
    struct Line: Equatable {
        var connection: Int
        /// `never`, `device` or `ended`: the connection's login state when the request came.
        var login: String
        var request: String
        var outcome: String
    }

    let lines: [Line]

    init(_ stderr: String) {
        lines = stderr.split(separator: "\n").compactMap { raw -> Line? in
            let f = raw.split(separator: " ", maxSplits: 5).map(String.init)
            guard f.count >= 6, f[0] == "qpqd:", f[1] == "conn", let n = Int(f[2]), f[3].hasPrefix("login=") else { return nil }
            return Line(connection: n, login: String(f[3].dropFirst("login=".count)), request: f[4], outcome: f[5])
        }
    }

    /// Requests authorized by the group token alone (docs/messaging.md §6.1).
    static let tokenRequests: Set<String> = ["Send", "Commit", "SetDisappearing"]

    /// The connections that carried any of `requests`.
    func connections(carrying requests: Set<String>) -> Set<Int> {
        Set(lines.filter { requests.contains($0.request) }.map(\.connection))
    }

    func lines(on connection: Int) -> [Line] { lines.filter { $0.connection == connection } }

    /// What is wrong with the sealed-sender property: a token request on a connection that is or
    /// was logged in, or a connection carrying them that also carried anything else. Empty: fine.
    func sealedSenderViolations() -> [String] {
        var problems: [String] = []
        for c in connections(carrying: Self.tokenRequests).sorted() {
            for l in lines(on: c) where l.login != "never" || !Self.tokenRequests.contains(l.request) {
                problems.append("conn \(c): \(l.request) with login=\(l.login)")
            }
        }
        return problems
    }
}
