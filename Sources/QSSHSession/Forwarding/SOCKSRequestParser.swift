/// Sans-I/O parser for the start of a SOCKS connection (SOCKS4, SOCKS4a and SOCKS5 CONNECT,
/// no authentication), as `-D` dynamic forwarding serves it. Feed it the client's bytes; it
/// says what to answer and, once the request is complete, where to connect.
public struct SOCKSRequestParser {
    /// The longest host name accepted (SOCKS5 cannot send more; SOCKS4a is capped the same).
    public static let maxNameLength = 255

    /// What the caller should do next.
    public enum Action: Equatable {
        /// Wait for more bytes.
        case needMore
        /// Send these bytes (SOCKS5 method choice), then call `feed([])` for bytes already
        /// buffered (a client may send its request without waiting) and keep feeding.
        case reply([UInt8])
        /// Connect to host:port, then answer with `successReply()` or `failureReply(_:)`.
        /// `leftover` is data the client sent after the request, for the target.
        case connect(host: String, port: Int, leftover: [UInt8])
        /// Send `reply` (may be empty) and close: the request is refused or malformed.
        case fail(reply: [UInt8], reason: String)
    }

    /// Why a connection could not be made, in SOCKS terms.
    public enum Failure {
        case general, notAllowed, hostUnreachable, refused
    }

    private enum State { case start, socks5Request, done }
    private var state = State.start
    private var buffer: [UInt8] = []
    public private(set) var version: UInt8 = 0

    public init() {}

    public mutating func feed(_ bytes: [UInt8]) -> Action {
        buffer += bytes
        switch state {
        case .start:
            guard let v = buffer.first else { return .needMore }
            version = v
            switch v {
            case 5: return socks5Greeting()
            case 4: return socks4Request()
            default:
                state = .done
                return .fail(reply: [], reason: "unsupported SOCKS version \(v)")
            }
        case .socks5Request: return socks5Request()
        case .done: return .needMore
        }
    }

    private mutating func socks5Greeting() -> Action {
        guard buffer.count >= 2 else { return .needMore }
        let n = Int(buffer[1])
        guard buffer.count >= 2 + n else { return .needMore }
        let methods = buffer[2..<(2 + n)]
        buffer.removeFirst(2 + n)
        guard methods.contains(0) else {
            state = .done
            return .fail(reply: [5, 0xFF], reason: "SOCKS5 client offers no method without authentication")
        }
        state = .socks5Request
        return .reply([5, 0])
    }

    private mutating func socks5Request() -> Action {
        guard buffer.count >= 5 else { return .needMore }
        guard buffer[0] == 5 else { return fail5(1, "bad version \(buffer[0]) in the SOCKS5 request") }
        guard buffer[1] == 1 else { return fail5(7, "SOCKS5 command \(buffer[1]) is not supported (only CONNECT)") }
        let host: String, end: Int
        switch buffer[3] {
        case 1:
            end = 4 + 4
            guard buffer.count >= end + 2 else { return .needMore }
            host = buffer[4..<8].map(String.init).joined(separator: ".")
        case 3:
            let len = Int(buffer[4])
            end = 5 + len
            guard len > 0 else { return fail5(1, "empty host name in the SOCKS5 request") }
            guard buffer.count >= end + 2 else { return .needMore }
            guard let name = Self.hostName(buffer[5..<end]) else { return fail5(1, "bad host name in the SOCKS5 request") }
            host = name
        case 4:
            end = 4 + 16
            guard buffer.count >= end + 2 else { return .needMore }
            host = stride(from: 4, to: 20, by: 2).map { String(UInt16(buffer[$0]) << 8 | UInt16(buffer[$0 + 1]), radix: 16) }.joined(separator: ":")
        default:
            return fail5(8, "SOCKS5 address type \(buffer[3]) is not supported")
        }
        let port = Int(buffer[end]) << 8 | Int(buffer[end + 1])
        let leftover = Array(buffer[(end + 2)...])
        buffer = []
        state = .done
        guard port != 0 else { return fail5(1, "port 0 in the SOCKS5 request") }
        return .connect(host: host, port: port, leftover: leftover)
    }

    private mutating func socks4Request() -> Action {
        guard buffer.count >= 9 else { return .needMore }
        guard buffer[1] == 1 else { return fail4("SOCKS4 command \(buffer[1]) is not supported (only CONNECT)") }
        let port = Int(buffer[2]) << 8 | Int(buffer[3])
        guard let userEnd = buffer[8...].firstIndex(of: 0) else {
            return buffer.count > 8 + Self.maxNameLength + 1 ? fail4("SOCKS4 user id too long") : .needMore
        }
        var host = buffer[4..<8].map(String.init).joined(separator: ".")
        var end = userEnd + 1
        if buffer[4] == 0 && buffer[5] == 0 && buffer[6] == 0 && buffer[7] != 0 {  // SOCKS4a: a name follows
            guard let nameEnd = buffer[end...].firstIndex(of: 0) else {
                return buffer.count - end > Self.maxNameLength ? fail4("SOCKS4a host name longer than \(Self.maxNameLength) bytes") : .needMore
            }
            guard nameEnd - end <= Self.maxNameLength, let name = Self.hostName(buffer[end..<nameEnd]) else {
                return fail4("bad SOCKS4a host name")
            }
            host = name
            end = nameEnd + 1
        }
        let leftover = Array(buffer[end...])
        buffer = []
        state = .done
        guard port != 0 else { return fail4("port 0 in the SOCKS4 request") }
        return .connect(host: host, port: port, leftover: leftover)
    }

    /// Host names: printable ASCII without spaces (what a resolver could look up).
    static func hostName(_ bytes: ArraySlice<UInt8>) -> String? {
        guard !bytes.isEmpty, bytes.count <= maxNameLength, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    private mutating func fail5(_ code: UInt8, _ reason: String) -> Action {
        state = .done
        return .fail(reply: [5, code, 0, 1, 0, 0, 0, 0, 0, 0], reason: reason)
    }

    private mutating func fail4(_ reason: String) -> Action {
        state = .done
        return .fail(reply: [0, 0x5B, 0, 0, 0, 0, 0, 0], reason: reason)
    }

    /// The answer once the connection is made.
    public func successReply() -> [UInt8] {
        version == 5 ? [5, 0, 0, 1, 0, 0, 0, 0, 0, 0] : [0, 0x5A, 0, 0, 0, 0, 0, 0]
    }

    /// The answer when the connection could not be made.
    public func failureReply(_ failure: Failure) -> [UInt8] {
        guard version == 5 else { return [0, 0x5B, 0, 0, 0, 0, 0, 0] }
        let code: UInt8
        switch failure {
        case .general: code = 1
        case .notAllowed: code = 2
        case .hostUnreachable: code = 4
        case .refused: code = 5
        }
        return [5, code, 0, 1, 0, 0, 0, 0, 0, 0]
    }
}
