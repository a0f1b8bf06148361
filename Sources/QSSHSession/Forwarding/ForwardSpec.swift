/// One `-L`, `-R` or `-D` argument in OpenSSH's syntax: `[bind:]port:host:hostport` for
/// `-L`/`-R`, `[bind:]port` for `-D`. IPv6 addresses go in brackets (`[::1]:8080:...`).
public struct ForwardSpec: Equatable, Sendable, CustomStringConvertible {
    /// Address to listen on; nil means the default (loopback), "*" or "" all addresses.
    public var bindHost: String?
    /// Port to listen on; 0 lets the system pick (qssh reports the port it got).
    public var bindPort: Int
    /// Where connections go (`-L`/`-R`); nil for a dynamic (SOCKS) forward.
    public var targetHost: String?
    public var targetPort: Int

    public init(bindHost: String?, bindPort: Int, targetHost: String?, targetPort: Int) {
        self.bindHost = bindHost; self.bindPort = bindPort; self.targetHost = targetHost; self.targetPort = targetPort
    }

    /// Why an argument was not understood.
    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses `[bind:]port:host:hostport`.
    public static func parse(forward text: String) throws(ParseError) -> ForwardSpec {
        let parts = try split(text)
        switch parts.count {
        case 3:
            return ForwardSpec(bindHost: nil, bindPort: try port(parts[0], text, allowZero: true), targetHost: try host(parts[1], text),
                               targetPort: try port(parts[2], text, allowZero: false))
        case 4:
            return ForwardSpec(bindHost: parts[0], bindPort: try port(parts[1], text, allowZero: true), targetHost: try host(parts[2], text),
                               targetPort: try port(parts[3], text, allowZero: false))
        default:
            throw ParseError(description: "bad forwarding specification '\(text)': expected [bind_address:]port:host:hostport")
        }
    }

    /// Parses `[bind:]port` (dynamic forwarding).
    public static func parse(dynamic text: String) throws(ParseError) -> ForwardSpec {
        let parts = try split(text)
        switch parts.count {
        case 1: return ForwardSpec(bindHost: nil, bindPort: try port(parts[0], text, allowZero: true), targetHost: nil, targetPort: 0)
        case 2: return ForwardSpec(bindHost: parts[0], bindPort: try port(parts[1], text, allowZero: true), targetHost: nil, targetPort: 0)
        default: throw ParseError(description: "bad dynamic forwarding specification '\(text)': expected [bind_address:]port")
        }
    }

    /// Parses `host:port` (for `-W`), with brackets for IPv6.
    public static func parse(hostPort text: String) throws(ParseError) -> (host: String, port: Int) {
        let parts = try split(text)
        guard parts.count == 2 else { throw ParseError(description: "bad host:port '\(text)'") }
        return (try host(parts[0], text), try port(parts[1], text, allowZero: false))
    }

    /// Splits on colons outside brackets; brackets are removed.
    public static func split(_ text: String) throws(ParseError) -> [String] {
        var parts: [String] = [], current = "", inBracket = false
        for c in text {
            switch c {
            case "[" where !inBracket && current.isEmpty: inBracket = true
            case "]" where inBracket: inBracket = false
            case ":" where !inBracket: parts.append(current); current = ""
            default: current.append(c)
            }
        }
        if inBracket { throw ParseError(description: "unbalanced '[' in '\(text)'") }
        parts.append(current)
        return parts
    }

    static func port(_ s: String, _ text: String, allowZero: Bool) throws(ParseError) -> Int {
        guard let p = Int(s), p >= (allowZero ? 0 : 1), p <= 65535 else {
            throw ParseError(description: "bad port '\(s)' in '\(text)'")
        }
        return p
    }

    static func host(_ s: String, _ text: String) throws(ParseError) -> String {
        guard !s.isEmpty, s.utf8.count <= 255 else { throw ParseError(description: "bad host name in '\(text)'") }
        return s
    }

    /// The address to bind: loopback by default, all addresses for "*" or "".
    public func listenAddress(gatewayPorts: Bool = false) -> String {
        switch bindHost {
        case nil: return gatewayPorts ? "0.0.0.0" : "127.0.0.1"
        case "*"?, ""?: return "0.0.0.0"
        case "localhost"?: return "127.0.0.1"
        case let h?: return h
        }
    }

    public var description: String {
        let bind = bindHost.map { ($0.contains(":") ? "[\($0)]" : $0) + ":" } ?? ""
        guard let targetHost else { return "\(bind)\(bindPort)" }
        return "\(bind)\(bindPort):\(targetHost.contains(":") ? "[\(targetHost)]" : targetHost):\(targetPort)"
    }
}
