import QSSHTestSupport
import NIOCore
import NIOPosix
import QSSHSession
import Testing

/// Sans-I/O parsers of forwarding: -L/-R/-D/-W arguments, SOCKS requests, server policy rules.
@Suite("forwarding parsers")
struct ForwardParsingTests {
    @Test("-L/-R/-D/-W specifications in OpenSSH syntax, IPv6 in brackets, clear errors")
    func specs() throws {
        #expect(try ForwardSpec.parse(forward: "8080:intranet:80") == ForwardSpec(bindHost: nil, bindPort: 8080, targetHost: "intranet", targetPort: 80))
        #expect(try ForwardSpec.parse(forward: "*:0:h:1") == ForwardSpec(bindHost: "*", bindPort: 0, targetHost: "h", targetPort: 1))
        #expect(try ForwardSpec.parse(forward: "[::1]:8080:[fe80::1]:22") == ForwardSpec(bindHost: "::1", bindPort: 8080, targetHost: "fe80::1", targetPort: 22))
        #expect(try ForwardSpec.parse(dynamic: "1080") == ForwardSpec(bindHost: nil, bindPort: 1080, targetHost: nil, targetPort: 0))
        #expect(try ForwardSpec.parse(dynamic: "0.0.0.0:1080").bindHost == "0.0.0.0")
        #expect(try ForwardSpec.parse(hostPort: "db:5432") == ("db", 5432))
        #expect(try ForwardSpec.parse(forward: "1:[::1]:2").description == "1:[::1]:2")
        for bad in ["", "80", "80:h", "x:h:80", "80:h:0", "80:h:65536", "1:2:3:4:5", "[::1:80:h:1", "80::1"] {
            #expect(throws: ForwardSpec.ParseError.self, "\(bad)") { try ForwardSpec.parse(forward: bad) }
        }
        #expect(throws: ForwardSpec.ParseError.self) { try ForwardSpec.parse(dynamic: "a:b:c") }
        #expect(throws: ForwardSpec.ParseError.self) { try ForwardSpec.parse(hostPort: "nohost") }
        #expect(ForwardSpec(bindHost: nil, bindPort: 1, targetHost: "h", targetPort: 2).listenAddress() == "127.0.0.1")
        #expect(ForwardSpec(bindHost: "*", bindPort: 1, targetHost: "h", targetPort: 2).listenAddress() == "0.0.0.0")
    }

    @Test("SOCKS5: method choice, CONNECT by IPv4, name and IPv6; split reads; refusals")
    func socks5() {
        var p = SOCKSRequestParser()
        #expect(p.feed([5]) == .needMore)
        #expect(p.feed([2, 2, 0]) == .reply([5, 0]))
        #expect(p.feed([5, 1, 0, 3, 9] + Array("localhost".utf8)) == .needMore)
        #expect(p.feed([0x1F, 0x90, 0xAA]) == .connect(host: "localhost", port: 8080, leftover: [0xAA]))
        #expect(p.successReply() == [5, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        #expect(p.failureReply(.refused)[1] == 5)

        var q = SOCKSRequestParser()
        #expect(q.feed([5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, 0, 22]) == .reply([5, 0]))
        #expect(q.feed([]) == .connect(host: "10.0.0.1", port: 22, leftover: []))

        var v6 = SOCKSRequestParser()
        _ = v6.feed([5, 1, 0])
        #expect(v6.feed([5, 1, 0, 4] + [UInt8](repeating: 0, count: 15) + [1, 0, 80]) == .connect(host: "0:0:0:0:0:0:0:1", port: 80, leftover: []))

        var noAuth = SOCKSRequestParser()
        if case .fail(let reply, _) = noAuth.feed([5, 1, 2]) { #expect(reply == [5, 0xFF]) } else { Issue.record("offer without 'no auth' accepted") }
        var bind = SOCKSRequestParser()
        _ = bind.feed([5, 1, 0])
        if case .fail(let reply, _) = bind.feed([5, 2, 0, 1, 1, 2, 3, 4, 0, 80]) { #expect(reply[1] == 7) } else { Issue.record("BIND accepted") }
        var badType = SOCKSRequestParser()
        _ = badType.feed([5, 1, 0])
        if case .fail(let reply, _) = badType.feed([5, 1, 0, 9, 0, 0]) { #expect(reply[1] == 8) } else { Issue.record("address type 9 accepted") }
        var badName = SOCKSRequestParser()
        _ = badName.feed([5, 1, 0])
        if case .fail = badName.feed([5, 1, 0, 3, 3, 0x61, 0x20, 0x62, 0, 80]) {} else { Issue.record("name with a space accepted") }
        var badVersion = SOCKSRequestParser()
        if case .fail(let reply, _) = badVersion.feed([6, 1]) { #expect(reply.isEmpty) } else { Issue.record("version 6 accepted") }
    }

    @Test("SOCKS4 and 4a, user id and name limits")
    func socks4() {
        var p = SOCKSRequestParser()
        #expect(p.feed([4, 1, 0, 80, 192, 168, 1, 2, 0x75]) == .needMore)
        #expect(p.feed([0, 9]) == .connect(host: "192.168.1.2", port: 80, leftover: [9]))
        #expect(p.successReply() == [0, 0x5A, 0, 0, 0, 0, 0, 0])
        var a = SOCKSRequestParser()
        #expect(a.feed([4, 1, 1, 0, 0, 0, 0, 7, 0] + Array("example.org".utf8) + [0]) == .connect(host: "example.org", port: 256, leftover: []))
        var long = SOCKSRequestParser()
        if case .fail(let reply, _) = long.feed([4, 1, 0, 80, 0, 0, 0, 1, 0] + [UInt8](repeating: 0x61, count: 300)) {
            #expect(reply[1] == 0x5B)
        } else { Issue.record("a 300-byte SOCKS4a name was accepted") }
        var longUser = SOCKSRequestParser()
        if case .fail = longUser.feed([4, 1, 0, 80, 1, 2, 3, 4] + [UInt8](repeating: 0x61, count: 300)) {} else { Issue.record("a 300-byte user id was accepted") }
    }

    @Test("SOCKS parser: 20,000 random and mutated inputs end in an action, never a crash")
    func socksFuzz() {
        var rng = SplitMix(seed: 0x50C5)
        let seeds: [[UInt8]] = [[5, 1, 0, 5, 1, 0, 3, 4, 0x61, 0x62, 0x63, 0x64, 0, 80], [4, 1, 0, 80, 0, 0, 0, 1, 0, 0x68, 0], [5, 1, 0, 5, 1, 0, 1, 1, 2, 3, 4, 0, 22]]
        var connects = 0
        for i in 0..<20_000 {
            var input = seeds[i % seeds.count]
            for _ in 0..<Int(rng.next() % 4) where !input.isEmpty {
                input[Int(rng.next() % UInt64(input.count))] = UInt8(truncatingIfNeeded: rng.next())
            }
            if i % 5 == 0 { input = (0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
            var p = SOCKSRequestParser()
            var offset = 0
            var action = SOCKSRequestParser.Action.needMore
            while offset < input.count {
                let n = min(input.count - offset, 1 + Int(rng.next() % 7))
                action = p.feed(Array(input[offset..<(offset + n)]))
                offset += n
                while case .reply = action { action = p.feed([]) }
                if case .connect(let host, let port, _) = action {
                    #expect(!host.isEmpty && (1...65535).contains(port))
                    connects += 1
                    break
                }
                if case .fail = action { break }
            }
        }
        #expect(connects > 1000)  // the mutations leave many requests valid: the parser is exercised past the header
    }

    @Test("forwarded sockets get TCP keepalive with short timers (a dead peer ends the relay)")
    func keepaliveOptions() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let channel = try await ForwardingRelay.connect(host: "127.0.0.1", port: echo.port, on: echo.group.next()) { $0.eventLoop.makeSucceededVoidFuture() }.get()
        #expect(try await channel.getOption(.socketOption(.so_keepalive)).get() != 0)
        #if os(Linux)
        let idle = try await channel.getOption(ChannelOptions.Types.SocketOption(level: .init(IPPROTO_TCP), name: .init(TCP_KEEPIDLE))).get()
        let count = try await channel.getOption(ChannelOptions.Types.SocketOption(level: .init(IPPROTO_TCP), name: .init(TCP_KEEPCNT))).get()
        #expect(idle == 60 && count == 3)
        #endif
        try await channel.close()
    }

    @Test("server policy rules: any, none, host:port lists, wildcards, privileged ports")
    func policy() throws {
        let open = try ForwardingPolicy.parseRules("db:5432,*:443,cache:*", listen: false)
        let p = ForwardingPolicy(permitOpen: open, permitListen: try ForwardingPolicy.parseRules("8080,localhost:9000", listen: true))
        #expect(p.refusalToOpen(host: "DB", port: 5432) == nil)
        #expect(p.refusalToOpen(host: "anything", port: 443) == nil)
        #expect(p.refusalToOpen(host: "cache", port: 1) == nil)
        #expect(p.refusalToOpen(host: "db", port: 22) != nil)
        #expect(p.refusalToListen(port: 8080, sessionIsRoot: false) == nil)
        #expect(p.refusalToListen(port: 9000, sessionIsRoot: false) == nil)
        #expect(p.refusalToListen(port: 0, sessionIsRoot: false) != nil)
        #expect(p.refusalToListen(host: "0.0.0.0", port: 9000, sessionIsRoot: false) != nil, "the rule names localhost")
        #expect(ForwardingPolicy().refusalToListen(port: 65616, sessionIsRoot: true) != nil, "65616 would wrap to port 80")
        #expect(ForwardingPolicy().refusalToListen(port: 80, sessionIsRoot: false) != nil)
        #expect(ForwardingPolicy().refusalToListen(port: 80, sessionIsRoot: true) == nil)
        #expect(try ForwardingPolicy.parseRules("none", listen: true) == [])
        #expect(try ForwardingPolicy.parseRules("any", listen: false) == nil)
        #expect(throws: ForwardSpec.ParseError.self) { try ForwardingPolicy.parseRules("8080", listen: false) }
        #expect(ForwardingPolicy(gatewayPorts: false).listenAddress(requested: "0.0.0.0") == "127.0.0.1")
        #expect(ForwardingPolicy(gatewayPorts: true).listenAddress(requested: "") == "0.0.0.0")
    }
}

/// The shared seeded generator under the name these tests use.
typealias SplitMix = SplitMix64
