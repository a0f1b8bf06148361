/// Why a message could not be encoded: a field over its limit (the peer would refuse it).
public enum QPQEncodeError: Error, Sendable, Equatable, CustomStringConvertible {
    case fieldTooLong(field: String, limit: Int, actual: Int)
    case invalidField(field: String, reason: String)

    public var description: String {
        switch self {
        case .fieldTooLong(let field, let limit, let actual): return "\(field): \(actual) is over the limit of \(limit)"
        case .invalidField(let field, let reason): return "\(field): \(reason)"
        }
    }
}
