import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import QNSPCrypto
import QPQClient
import QPQProtocol
import QSSHTools

/// `qpq`: the messenger's command line (docs/messaging.md).
package struct QPQCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "qpq",
        abstract: "Post-quantum group messenger (MLS over qpq/1 inside QNSP).",
        discussion: """
            The password is read from QPQ_PASSWORD or asked on the terminal. It logs in with OPAQUE
            (the server never sees it) and also unlocks the local store (Argon2id, AES-256-GCM).
            """,
        subcommands: [Register.self, Login.self, Devices.self, GroupCommand.self, Send.self, Recv.self, SafetyNumber.self, Disappear.self]
    )
    package init() {}
}

/// Options shared by every subcommand.
struct QPQOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Local encrypted store.", valueName: "path"))
    var store: String = NSHomeDirectory() + "/.qpq/client.store"

    @Option(name: .long, help: ArgumentHelp("Server (register, login).", valueName: "host:port"))
    var server: String = "127.0.0.1:7420"

    @Option(name: .long, help: ArgumentHelp("The server's host public key file (register, login).", valueName: "file"))
    var hostKey: String?

    func password() throws -> String {
        if let p = ProcessInfo.processInfo.environment["QPQ_PASSWORD"], !p.isEmpty { return p }
        guard let p = Terminal.prompt("Password: ", secret: true), !p.isEmpty else { throw ToolError("no password given") }
        return p
    }

    func serverAddress() throws -> (String, Int) {
        guard let colon = server.lastIndex(of: ":"), let port = Int(server[server.index(after: colon)...]), (1...65535).contains(port) else {
            throw ToolError("--server wants host:port, not \(server)")
        }
        return (String(server[..<colon]), port)
    }

    func pinnedHostKey() throws -> (HostPublicKey, String) {
        guard let hostKey else { throw ToolError("--host-key FILE is needed to reach the server the first time") }
        do {
            let text = try KeyFileIO.readText(path: hostKey).trimmingCharacters(in: .whitespacesAndNewlines)
            guard case .host(let key, _) = try PublicKeyLine(parsing: text) else { throw ToolError("\(hostKey) is not a host public key") }
            return (key, text)
        } catch let e as ToolError {
            throw e
        } catch {
            throw ToolError("\(hostKey): \(error)")
        }
    }

    func loadState(_ password: String) throws -> QPQClientState {
        do { return try QPQLocalStore.load(path: store, passphrase: password) } catch {
            throw ToolError("\(store): \(error)")
        }
    }

    func save(_ state: QPQClientState, _ password: String) throws {
        do { try QPQLocalStore.save(state, path: store, passphrase: password) } catch { throw ToolError("\(store): \(error)") }
    }
}

/// Connects to the state's server, resumes the session, runs `body`, saves the state.
func withMessenger<T: Sendable>(_ options: QPQOptions, save: Bool = true,
                                _ body: @escaping @Sendable (QPQMessenger, QPQConnection) async throws -> T) throws -> T {
    let password = try options.password()
    let state = try options.loadState(password)
    let hostKey: HostPublicKey
    do {
        guard case .host(let key, _) = try PublicKeyLine(parsing: state.hostKey) else { throw ToolError("bad host key in the store") }
        hostKey = key
    } catch {
        throw ToolError("bad host key in the store: \(error)")
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    let (value, final) = try BlockingAsync.run { () async throws -> (T, QPQClientState) in
        let conn = try await QPQConnection.connect(group: group, host: state.host, port: state.port, hostKey: hostKey)
        do {
            let messenger = try QPQMessenger(state: state, transport: conn)
            try await messenger.resume()
            let value = try await body(messenger, conn)
            await conn.close()
            return (value, messenger.state)
        } catch {
            await conn.close()
            throw error
        }
    }
    if save { try options.save(final, password) }
    return value
}

extension QPQMessenger: @unchecked Sendable {}  // used by one task at a time in the CLI

struct Register: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create an account on the server (OPAQUE).")
    @OptionGroup var options: QPQOptions
    @Argument var user: String

    func run() throws {
        let password = try options.password()
        let (host, port) = try options.serverAddress()
        let (key, _) = try options.pinnedHostKey()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let user = self.user
        try BlockingAsync.run {
            let conn = try await QPQConnection.connect(group: group, host: host, port: port, hostKey: key)
            defer { Task { await conn.close() } }
            try await QPQAccount.register(user: user, password: Array(password.utf8), over: conn)
        }
        print("registered \(user)")
    }
}

struct Login: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Log this device in (creates the local store).")
    @OptionGroup var options: QPQOptions
    @Argument var user: String
    @Option(name: .long, help: "This device's name.")
    var deviceName: String = ProcessInfo.processInfo.hostName

    func run() throws {
        let password = try options.password()
        let (host, port) = try options.serverAddress()
        let (key, keyLine) = try options.pinnedHostKey()
        var state = QPQClientState(host: host, port: port, hostKey: keyLine)
        if FileManager.default.fileExists(atPath: options.store) {
            let old = try options.loadState(password)
            if old.user == user && old.host == host && old.port == port { state = old }
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let (user, name, start) = (self.user, String(deviceName.prefix(QPQLimits.maxDeviceName)), state)
        let final = try BlockingAsync.run { () async throws -> QPQClientState in
            let conn = try await QPQConnection.connect(group: group, host: host, port: port, hostKey: key)
            do {
                let messenger = try QPQMessenger(state: start, transport: conn)
                try await messenger.login(user: user, password: Array(password.utf8), deviceName: name)
                await conn.close()
                return messenger.state
            } catch {
                await conn.close()
                throw error
            }
        }
        try options.save(final, password)
        print("logged in as \(user), device \(final.deviceId)")
    }
}

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List this account's devices.")
    @OptionGroup var options: QPQOptions

    func run() throws {
        let answer = try withMessenger(options, save: false) { _, conn in try await conn.expect(.listDevices) }
        guard case .devices(let devices) = answer else { throw ToolError("unexpected answer \(answer)") }
        for d in devices {
            let fp = (try? SignatureScheme.PublicKey(rawRepresentation: d.identityKey)).map { UserPublicKey(signing: $0).fingerprint } ?? "?"
            print("\(d.deviceId)\t\(d.name)\t\(fp)\(d.isCurrent ? "\t(this device)" : "")")
        }
    }
}

struct GroupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "group", abstract: "Create, extend and list groups.",
                                                    subcommands: [Create.self, Add.self, Remove.self, List.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a group (its name is its id on the server).")
        @OptionGroup var options: QPQOptions
        @Argument var name: String
        func run() throws {
            let name = self.name
            try withMessenger(options) { m, _ in try await m.createGroup(name) }
            print("created \(name)")
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add every device of a user to a group.")
        @OptionGroup var options: QPQOptions
        @Argument var name: String
        @Argument var user: String
        func run() throws {
            let (name, user) = (self.name, self.user)
            let epoch = try withMessenger(options) { m, _ in
                _ = try await m.receive()
                try await m.add(user: user, to: name)
                return try m.epoch(of: name)
            }
            print("added \(user) to \(name) (epoch \(epoch))")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove every device of a user from a group.")
        @OptionGroup var options: QPQOptions
        @Argument var name: String
        @Argument var user: String
        func run() throws {
            let (name, user) = (self.name, self.user)
            let epoch = try withMessenger(options) { m, _ in
                _ = try await m.receive()
                try await m.remove(user: user, from: name)
                return try m.epoch(of: name)
            }
            print("removed \(user) from \(name) (epoch \(epoch))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List this device's groups and their members.")
        @OptionGroup var options: QPQOptions
        func run() throws {
            let lines = try withMessenger(options) { m, _ -> [String] in
                _ = try await m.receive()
                return try m.state.groups.keys.sorted().map { name in
                    "\(name)\tepoch \(try m.epoch(of: name))\t\(try m.members(of: name).joined(separator: ","))"
                }
            }
            for l in lines { print(l) }
        }
    }
}

struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send a text message to a group.")
    @OptionGroup var options: QPQOptions
    @Argument var group: String
    @Argument var text: String
    func run() throws {
        let (group, text) = (self.group, self.text)
        try withMessenger(options) { m, _ in
            _ = try await m.receive()
            try await m.send(text, to: group)
        }
    }
}

struct Disappear: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make the group's new messages disappear after DURATION (30s, 10m, 1h, 7d, or off).")
    @OptionGroup var options: QPQOptions
    @Argument var group: String
    @Argument var duration: String

    static func seconds(_ text: String) -> UInt32? {
        if text == "off" || text == "0" { return 0 }
        guard let unit = text.last, let n = UInt32(text.dropLast()), n > 0 else { return nil }
        let factor: UInt32
        switch unit {
        case "s": factor = 1
        case "m": factor = 60
        case "h": factor = 3600
        case "d": factor = 86400
        default: return nil
        }
        let (v, overflow) = n.multipliedReportingOverflow(by: factor)
        return overflow || v > QPQLimits.maxDisappearSeconds ? nil : v
    }

    func run() throws {
        guard let seconds = Self.seconds(duration) else { throw ToolError("DURATION is a number with s, m, h or d (at most 365d), or off") }
        let group = self.group
        try withMessenger(options) { m, _ in
            _ = try await m.receive()
            try await m.setDisappearing(group, seconds: seconds)
        }
        print(seconds == 0 ? "messages in \(group) no longer disappear" : "new messages in \(group) disappear after \(duration)")
    }
}

struct SafetyNumber: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "safety-number",
                                                    abstract: "Print the number you and USER compare (in person or on a call).")
    @OptionGroup var options: QPQOptions
    @Argument var user: String
    func run() throws {
        let user = self.user
        let digits = try withMessenger(options, save: false) { m, _ in try await m.safetyNumber(with: user) }
        print(QPQSafetyNumber.formatted(digits))
    }
}

struct Recv: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print new messages (--watch: keep printing as they arrive).")
    @OptionGroup var options: QPQOptions
    @Flag(name: .long, help: "Stay connected and print messages as they are pushed (until the connection ends).")
    var watch = false

    func run() throws {
        let watch = self.watch
        try withMessenger(options) { m, conn in
            for msg in try await m.receive() { Self.show(msg) }
            guard watch else { return }
            _ = try await conn.expect(.subscribe)
            Terminal.warn("qpq: watching (pushes arrive as they are queued)")
            while let push = try? await conn.nextPush(timeout: .hours(24)) {
                guard case .deliver(let e) = push else { break }
                if let msg = m.process(e) { Self.show(msg) }
                _ = try await conn.expect(.ack(messageIds: [e.messageId]))
            }
        }
    }

    static func show(_ m: QPQClientState.Message) {
        // Unbuffered: a reader of a pipe sees each message as it arrives.
        FileHandle.standardOutput.write(Data("[\(m.group)] \(m.sender): \(PrintableText.escaped(m.text))\n".utf8))
    }
}
