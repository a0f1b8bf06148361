import Foundation
import NIOCore
import QNSP
import QNSPCrypto
import QSFTP
import QSSHAgent

/// Valid inputs for each fuzz target, made with the same fixed keys the targets use, so that
/// the fuzzer starts from messages that get past the first checks.
package enum FuzzSeeds {
    /// Writes `DIR/TARGET/seed-N` files; false when a file cannot be written.
    package static func write(to directory: String) -> Bool {
        var ok = true
        for (target, inputs) in all() {
            let dir = directory + "/" + target
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (i, bytes) in inputs.enumerated() {
                ok = FileManager.default.createFile(atPath: "\(dir)/seed-\(i)", contents: Data(bytes)) && ok
            }
        }
        return ok
    }

    static let marker: [UInt8] = [0xFF, 0xFE]

    package static func all() -> [String: [[UInt8]]] {
        var seeds: [String: [[UInt8]]] = [:]
        // A full handshake between a client and a server with the fuzz keys: its flights seed
        // both roles (the server's input is the client's flights, and the other way round).
        let client = QNSPConnection(
            client: .init(username: "fuzz", user: FuzzTargets.user, pinnedHostKey: FuzzTargets.host.publicKey)
        )
        var policy = QNSPHandshakeGuard.Policy()
        policy.perSourcePerSecond = 0
        let server = QNSPConnection(
            server: .init(hostKeys: [FuzzTargets.host], handshakeGuard: QNSPHandshakeGuard(policy: policy)) { _, _ in
                .accept
            }
        )
        var toServer: [[UInt8]] = []
        var toClient: [[UInt8]] = []
        if (try? client.start()) != nil {
            for _ in 0..<4 {
                let c = client.takeOutbound()
                if !c.isEmpty {
                    toServer.append(c)
                    if let (_, events) = try? server.receive(c), case .authorizationRequired? = events.last {
                        _ = try? server.completeAuthorization(.accept)
                    }
                }
                let s = server.takeOutbound()
                if !s.isEmpty {
                    toClient.append(s)
                    _ = try? client.receive(s)
                }
            }
        }
        seeds["qnsp-server"] = [toServer.joined(separator: marker).map { $0 }, toServer.first ?? []]
        seeds["qnsp-client"] = [[1] + toClient.joined(separator: marker), [1] + (toClient.first ?? [])]
        // First contact: a host key request and the announcement.
        let firstContact = QNSPConnection(
            client: .init(username: "fuzz", user: FuzzTargets.user, pinnedHostKey: nil) { _ in true }
        )
        if (try? firstContact.start()) != nil {
            let request = firstContact.takeOutbound()
            seeds["qnsp-server", default: []].append(request)
            let s = QNSPConnection(server: .init(hostKeys: [FuzzTargets.host]) { _, _ in .accept })
            _ = try? s.receive(request)
            seeds["qnsp-client", default: []].append([0] + s.takeOutbound())
        }
        seeds["qnsp-cells"] = [[1, 0, 5, 104, 101, 108, 108, 111, 5, 0, 0, 7, 0, 0, 3, 0, 1, 1, 4, 0, 0]]
        seeds["handshake-messages"] = (0..<11).map {
            [UInt8($0)] + (toServer.first.map { Array($0.dropFirst(12)) } ?? [])
        }
        seeds["inner-ssh"] = [[0, 0, 0, 12, 4, 90, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6]]
        seeds["sftp"] = [[0, 0, 0, 5, 1, 0, 0, 0, 3], [0, 0, 0, 13, 3, 0, 0, 0, 1, 0, 0, 0, 4, 47, 116, 109, 112]]
        seeds["socks"] = [
            [5, 1, 0] + marker + [5, 1, 0, 3, 11] + Array("example.com".utf8) + [0, 80],
            [4, 1, 0, 80, 0, 0, 0, 1, 0] + Array("host".utf8) + [0],
        ]
        seeds["config"] = [
            Array("Host *.lab\n  HostName h\n  Port 22\n  LocalForward 8080 localhost:80\nPermitOpen a:1 b:2\n".utf8)
        ]
        seeds["known-hosts"] = [
            Array(
                "[127.0.0.1]:22222 \(PublicKeyLine.host(FuzzTargets.host.publicKey, comment: "").text)\n|1|c2FsdA==|aGFzaA== ssh-ed25519 AAAA\n@revoked * ssh-ed25519 AAAA\n"
                    .utf8
            )
        ]
        seeds["authorized-keys"] = [
            Array("# keys\n\(PublicKeyLine.user(FuzzTargets.user.publicKey, comment: "fuzz").text)\n".utf8)
        ]
        seeds["key-files"] = [
            Array(
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB\n-----END OPENSSH PRIVATE KEY-----\n"
                    .utf8
            )
        ]
        if let cert = try? QNSPCertificate.sign(
            subject: .user(FuzzTargets.user.publicKey), serial: 1, keyID: "fuzz", principals: ["fuzz"], validAfter: 0, validBefore: 100,
            options: [.init(name: "no-pty")], ca: FuzzTargets.user.signingKey) {
            seeds["key-files", default: []] += [Array(cert.line(comment: "fuzz").utf8), cert.blob]
        }
        seeds["audit-log"] = [
            Array(#"{"chain":"00","event":"segment-start","prev":"","segment":"a","seq":1,"time":"t"}"#.utf8)
        ]
        // An agent session: add (with constraints), list, sign a ClientAuth input, lock, unlock, remove.
        let material = AgentKeyMaterial(FuzzTargets.user)
        let input = ClientAuthSigningInput(
            transcriptHash: [UInt8](repeating: 3, count: 32), username: "fuzz", publicKey: FuzzTargets.user.publicKey.blob)
        let session: [AgentRequest] = [
            .add(material, constraints: AgentConstraints(lifetime: 5, confirm: true)), .requestIdentities,
            .sign(keyBlob: material.keyBlob, data: input.agentData, flags: 0), .lock(passphrase: [1]),
            .unlock(passphrase: [1]), .remove(keyBlob: material.keyBlob), .removeAll,
        ]
        seeds["agent"] = [session.flatMap { AgentFramer.frame($0.encoded()) }] + session.map { AgentFramer.frame($0.encoded()) }
        // A stealth first flight and data frames, made with the fuzz line and clock.
        if let c = try? StealthSession(role: .client, line: FuzzTargets.stealth, clock: FuzzTargets.stealthClock) {
            try? c.seal([UInt8](repeating: 0x51, count: 3000))
            seeds["stealth-server"] = [c.takeOutbound().flatMap { $0 }]
        }
        seeds["stealth-line"] = [Array(FuzzTargets.stealth.description.utf8)]
        return seeds
    }
}
