import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import QNSPCrypto
import QOPAQUE
import QPQClient
import QPQProtocol
import QSSHTools

/// `qpq-bench`: starts a real qpqd, connects many logged-in, subscribed devices, and measures
/// fan-out throughput and send-to-receive latency to one group, and qpqd's memory per device.
package struct QPQBenchCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "qpq-bench",
        abstract: "Throughput, latency and memory of qpqd (starts its own qpqd beside this binary).",
        discussion: """
            Messages are opaque bytes of --size (the server never decrypts, so MLS is left out);
            they are uploaded with the group token on --senders anonymous connections (sealed
            sender) and pushed to every member. Accounts use a cheap Argon2id (1 MiB, t = 1) on
            the client side to keep the setup short: the server's work does not depend on it.
            """
    )

    @Option(help: "Connected, subscribed devices.") var devices = 1000
    @Option(help: "Members of the group (the first N devices).") var groupSize = 100
    @Option(help: "Messages sent to the group.") var messages = 2000
    @Option(help: "Message size in bytes.") var size = 256
    @Option(help: "Sending connections (anonymous).") var senders = 4
    @Option(help: "Requests in flight per sending connection.") var window = 8
    @Option(help: "qpqd --durability (full or normal).") var durability = "full"
    @Option(help: "qpqd --threads (storage worker threads).") var serverThreads = 2

    package init() {}

    struct Failure: Error, CustomStringConvertible { let description: String }

    package func run() throws {
        guard ["full", "normal"].contains(durability) else { throw ToolError("--durability is full or normal") }
        guard devices >= groupSize, groupSize >= 1, messages >= 1, size >= 8, senders >= 1, window >= 1 else {
            throw ToolError("need devices >= group-size >= 1, messages >= 1, size >= 8")
        }
        let dir = NSTemporaryDirectory() + "qpq-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let host = try HostKeyPair.generate()
        try KeyFileIO.writePrivateKey(try PrivateKeyFile.encode(.host(host)), path: dir + "/host_key")
        guard serverThreads >= 1 else { throw ToolError("--server-threads must be at least 1") }
        let server = try Self.startServer(dir: dir, durability: durability, threads: serverThreads)
        defer { kill(server.pid, SIGTERM) }
        print("qpqd pid \(server.pid) on port \(server.port); baseline RSS \(Self.rssKiB(server.pid) / 1024) MiB")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        defer { try? group.syncShutdownGracefully() }
        let options = self
        try BlockingAsync.run(seconds: 3600) { try await options.measure(group: group, host: host.publicKey, port: server.port, pid: server.pid) }
    }

    // MARK: - The server process

    static func startServer(dir: String, durability: String, threads: Int) throws -> (pid: Int32, port: Int) {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let qpqd = me.appendingPathComponent("qpqd").path
        guard FileManager.default.isExecutableFile(atPath: qpqd) else { throw ToolError("\(qpqd) not found (build qpqd beside qpq-bench)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: qpqd)
        p.arguments = ["-p", "0", "-h", dir + "/host_key", "--database", dir + "/db.sqlite", "--opaque-setup", dir + "/opaque",
                       "--requests-per-second", "1000000", "--durability", durability, "--threads", "\(threads)"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        // The "listening on" line, read on this (main) thread with a deadline.
        let fd = err.fileHandleForReading.fileDescriptor
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        var buffer = [UInt8](repeating: 0, count: 1024)
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 1000) >= 0 else { break }
            if pfd.revents == 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            text += String(decoding: buffer[0..<n], as: UTF8.self)
            for line in text.split(separator: "\n") where line.hasPrefix("qpqd: listening on 127.0.0.1:") {
                if let port = Int(line.dropFirst("qpqd: listening on 127.0.0.1:".count)) { return (p.processIdentifier, port) }
            }
        }
        p.terminate()
        throw ToolError("qpqd did not start: \(text)")
    }

    static func rssKiB(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    /// User + system CPU seconds of a process (from /proc; clock ticks of 1/100 s).
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return 0 }
        return (u + s) / 100
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    // MARK: - The measurement

    func measure(group: EventLoopGroup, host: HostPublicKey, port: Int, pid: Int32) async throws {
        let cheap = try OPAQUEConfiguration(context: OPAQUEConfiguration.qpqDefault.context,
                                            keyStretching: .argon2id(Argon2idParameters(memoryKiB: 1024, iterations: 1)))
        let before = Self.rssKiB(pid)
        let setupStart = Self.now()
        var conns: [(QPQConnection, UInt64)] = []
        let batch = 16
        var next = 0
        while next < devices {
            let range = next..<min(devices, next + batch)
            let made = try await withThrowingTaskGroup(of: (Int, QPQConnection, UInt64).self) { tasks in
                for i in range {
                    tasks.addTask {
                        // 100 devices per 127/8 source address: QNSP's per-source handshake budget is 256.
                        let source = try SocketAddress(ipAddress: "127.0.\(1 + i / 25_600).\(2 + (i / 100) % 256)", port: 0)
                        let c = try await QPQConnection.connect(group: group, host: "127.0.0.1", port: port, hostKey: host, timeout: .seconds(120),
                                                                localAddress: source)
                        let user = "bench\(i)"
                        try await QPQAccount.register(user: user, password: Array(user.utf8), configuration: cheap, over: c)
                        let cred = try await QPQAccount.login(user: user, password: Array(user.utf8), deviceId: 0, deviceName: user,
                                                              identity: try SignatureScheme.PrivateKey.generate(), configuration: cheap, over: c)
                        _ = try await c.expect(.subscribe)
                        return (i, c, cred.deviceId)
                    }
                }
                var out: [(Int, QPQConnection, UInt64)] = []
                for try await r in tasks { out.append(r) }
                return out.sorted { $0.0 < $1.0 }
            }
            conns += made.map { ($0.1, $0.2) }
            next = range.upperBound
        }
        let after = Self.rssKiB(pid)
        let setupSeconds = Double(Self.now() - setupStart) / 1e9
        print("\(devices) devices registered, logged in and subscribed in \(String(format: "%.1f", setupSeconds)) s")
        print("qpqd RSS \(before / 1024) MiB -> \(after / 1024) MiB: \(String(format: "%.1f", Double(after - before) / Double(devices))) KiB per connected device")

        // The group: device 0 creates it and adds the next groupSize - 1 devices in one commit.
        let gid = Array("bench".utf8)
        let t0 = [UInt8](repeating: 1, count: 32), t1 = [UInt8](repeating: 2, count: 32)
        let owner = conns[0].0
        _ = try await owner.expect(.createGroup(groupId: gid, tokenHash: KeyDerivation.sha256(t0)))
        _ = try await owner.expect(.commit(groupId: gid, epoch: 0, token: t0, nextTokenHash: KeyDerivation.sha256(t1),
                                           add: conns[1..<groupSize].map(\.1), remove: [], commit: [0], welcomes: []))
        // Drain the commit push of the owner.
        _ = try await owner.nextPush(timeout: .seconds(30))

        // Receivers: every member records the latency of each message (the send time is in the payload).
        let latencies = NIOLockedValueBox<[UInt64]>([])
        latencies.withLockedValue { $0.reserveCapacity(messages * groupSize) }
        let total = messages
        let serverCPU = Self.cpuSeconds(pid), benchCPU = Self.cpuSeconds(getpid())
        let start = Self.now()
        let lastReceipt = NIOLockedValueBox<UInt64>(0)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for (conn, _) in conns[0..<groupSize] {
                tasks.addTask {
                    var got = 0
                    var pendingAcks: [UInt64] = []
                    var local: [UInt64] = []
                    local.reserveCapacity(total)
                    while got < total {
                        guard case .deliver(let e)? = try await conn.nextPush(timeout: .seconds(120)) else {
                            throw Failure(description: "a member stopped receiving after \(got) messages")
                        }
                        guard e.kind == .application, e.payload.count >= 8 else { continue }
                        let sent = e.payload[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                        local.append(Self.now() - sent)
                        got += 1
                        pendingAcks.append(e.messageId)
                        if pendingAcks.count == 100 || got == total {
                            _ = try await conn.expect(.ack(messageIds: pendingAcks))
                            pendingAcks = []
                        }
                    }
                    let finished = Self.now()
                    latencies.withLockedValue { $0 += local }
                    lastReceipt.withLockedValue { $0 = max($0, finished) }
                }
            }
            // Senders: anonymous connections, authorized by the group token only.
            let perSender = (total + senders - 1) / senders
            let size = self.size, window = self.window
            for s in 0..<senders {
                let count = min(perSender, total - s * perSender)
                guard count > 0 else { continue }
                tasks.addTask {
                    let c = try await QPQConnection.connect(group: group, host: "127.0.0.1", port: port, hostKey: host, timeout: .seconds(120))
                    var sent = 0
                    while sent < count {
                        let n = min(window, count - sent)
                        try await withThrowingTaskGroup(of: Void.self) { inflight in
                            for _ in 0..<n {
                                inflight.addTask {
                                    var payload = [UInt8](repeating: 0x5A, count: size)
                                    let t = Self.now()
                                    for i in 0..<8 { payload[i] = UInt8(truncatingIfNeeded: t >> UInt64(56 - 8 * i)) }
                                    let r = try await c.expect(.send(groupId: gid, epoch: 1, token: t1, message: payload))
                                    guard case .sent = r else { throw Failure(description: "send: \(r)") }
                                }
                            }
                            try await inflight.waitForAll()
                        }
                        sent += n
                    }
                    await c.close()
                }
            }
            try await tasks.waitForAll()
        }
        let seconds = Double(lastReceipt.withLockedValue { $0 } - start) / 1e9
        let all = latencies.withLockedValue { $0 }.sorted()
        func ms(_ q: Double) -> String { String(format: "%.2f", Double(all[min(all.count - 1, Int(Double(all.count) * q))]) / 1e6) }
        print("\(messages) messages of \(size) bytes to a \(groupSize)-member group (\(senders) anonymous senders, window \(window)):")
        print("  \(String(format: "%.0f", Double(messages) / seconds)) messages/s, \(String(format: "%.0f", Double(messages * groupSize) / seconds)) deliveries/s (\(String(format: "%.2f", seconds)) s)")
        print("  send-to-receive latency: median \(ms(0.5)) ms, p99 \(ms(0.99)) ms, max \(ms(1.0)) ms (\(all.count) deliveries)")
        print("  CPU during the fan-out: qpqd \(String(format: "%.1f", Self.cpuSeconds(pid) - serverCPU)) s, this client process \(String(format: "%.1f", Self.cpuSeconds(getpid()) - benchCPU)) s (2 cores shared)")
        print("qpqd RSS at the end: \(Self.rssKiB(pid) / 1024) MiB")
        for (c, _) in conns { await c.close() }
    }
}
