/// What a server lets its clients forward: where `direct-tcpip` channels may connect
/// (like sshd's PermitOpen), which ports `tcpip-forward` may listen on (PermitListen), and
/// whether remote listeners may bind other addresses than loopback (GatewayPorts).
public struct ForwardingPolicy: Sendable, Equatable {
    /// A `host:port` rule; "*" matches any host or any port.
    public struct Rule: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int?

        public func matches(host h: String, port p: Int) -> Bool {
            (host == "*" || host.lowercased() == h.lowercased()) && (port == nil || port == p)
        }

        public var description: String { "\(host):\(port.map(String.init) ?? "*")" }
    }

    /// nil permits every target; an empty list none.
    public var permitOpen: [Rule]?
    /// nil permits every port; an empty list none. Only the port of a rule is used for listening.
    public var permitListen: [Rule]?
    /// Remote listeners bind the address the client names (else always loopback).
    public var gatewayPorts: Bool

    public init(permitOpen: [Rule]? = nil, permitListen: [Rule]? = nil, gatewayPorts: Bool = false) {
        self.permitOpen = permitOpen; self.permitListen = permitListen; self.gatewayPorts = gatewayPorts
    }

    /// Parses "any", "none" or a comma-separated list of `host:port` (`-L`-side rules) or
    /// `[host:]port` (listen rules); "*" is a wildcard.
    public static func parseRules(_ text: String, listen: Bool) throws(ForwardSpec.ParseError) -> [Rule]? {
        switch text.lowercased() {
        case "any": return nil
        case "none": return []
        default: break
        }
        return try text.split(separator: ",").map { item throws(ForwardSpec.ParseError) -> Rule in
            let parts = try ForwardSpec.split(String(item))
            let host: String, portText: String
            switch (parts.count, listen) {
            case (1, true): (host, portText) = ("*", parts[0])
            case (2, _): (host, portText) = (parts[0], parts[1])
            default: throw ForwardSpec.ParseError(description: "bad rule '\(item)': expected \(listen ? "[host:]port" : "host:port")")
            }
            if portText == "*" { return Rule(host: host, port: nil) }
            guard let p = Int(portText), (0...65535).contains(p), !host.isEmpty else {
                throw ForwardSpec.ParseError(description: "bad rule '\(item)'")
            }
            return Rule(host: host, port: p)
        }
    }

    /// Why a `direct-tcpip` channel to host:port is refused, or nil.
    public func refusalToOpen(host: String, port: Int) -> String? {
        guard let rules = permitOpen else { return nil }
        return rules.contains { $0.matches(host: host, port: port) } ? nil : "\(host) port \(port) is not permitted (--permit-open)"
    }

    /// Why listening on `host` (as the client named it) and `port` is refused, or nil. Ports below
    /// 1024 need a root session; a rule's host must match the requested address unless it is "*".
    public func refusalToListen(host: String = "localhost", port: Int, sessionIsRoot: Bool) -> String? {
        guard (0...65535).contains(port) else { return "\(port) is not a port number" }
        if port != 0 && port < 1024 && !sessionIsRoot { return "port \(port) is privileged" }
        guard let rules = permitListen else { return nil }
        let permitted = rules.contains { rule in
            (rule.port == nil || rule.port == port) && (rule.host == "*" || rule.host.lowercased() == host.lowercased())
        }
        return permitted ? nil : "listening on \(host) port \(port) is not permitted (--permit-listen)"
    }

    /// The address a remote listener binds for the host the client asked for.
    public func listenAddress(requested: String) -> String {
        guard gatewayPorts else { return "127.0.0.1" }
        switch requested {
        case "", "*", "0.0.0.0": return "0.0.0.0"
        case "localhost": return "127.0.0.1"
        default: return requested
        }
    }
}
