/// Any qpq/1 message: the three families share one type space.
public enum QPQMessage: Sendable, Equatable {
    case request(QPQRequest)
    case response(QPQResponse)
    case push(QPQPush)

    public var type: UInt8 {
        switch self {
        case .request(let r): return r.type
        case .response(let r): return r.type
        case .push(let p): return p.type
        }
    }
}
