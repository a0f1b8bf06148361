import QNSPCrypto
import QSSHSession
@testable import QSSHTools
import Testing

@Suite("known_hosts: lookups read only the keys they need")
struct KnownHostsTests {
    static func line(_ pattern: String, _ key: HostPublicKey) -> String {
        pattern + " " + PublicKeyLine.host(key, comment: "").text
    }

    @Test("a host's first readable line wins; unreadable lines (its own or other hosts') are skipped, as before")
    func unreadableLinesAreSkipped() throws {
        let a = try HostKeyPair.generate().publicKey
        let b = try HostKeyPair.generate().publicKey
        var lines = ["alpha qnsp-xwing-mldsa65 !!!not-base64!!!", "alpha qnsp-xwing-mldsa65 AAAA"]
        for i in 0..<200 { lines.append("host\(i) qnsp-xwing-mldsa65 AAAA\(i)") }
        lines.append(Self.line("alpha,[alpha]:2222", a))
        lines.append(Self.line("beta", b))
        lines.append(Self.line("alpha", b))  // a later line for alpha: the first readable one counts
        let file = KnownHosts(path: "kh", text: lines.joined(separator: "\n") + "\n")

        let (entryA, lookupA) = file.lookup("alpha")
        guard case .known(let keyA) = lookupA else { Issue.record("alpha not found"); return }
        #expect(keyA.blob == a.blob)
        #expect(entryA?.line == 203)
        guard case .known(let keyPort) = file.lookup("[alpha]:2222").1 else { Issue.record("[alpha]:2222 not found"); return }
        #expect(keyPort.blob == a.blob)
        guard case .known(let keyB) = file.lookup("beta").1 else { Issue.record("beta not found"); return }
        #expect(keyB.blob == b.blob)
        guard case .unknown = file.lookup("host7").1 else { Issue.record("an unreadable key was used"); return }
        guard case .unknown = file.lookup("gamma").1 else { Issue.record("gamma found"); return }
        #expect(file.entries.map(\.line) == [203, 204, 205])
    }

    @Test("hashed names are matched without reading other lines' keys")
    func hashedNames() throws {
        let key = try HostKeyPair.generate().publicKey
        let hashed = try HashedHostName.make("[server.lab]:22222")
        let text = "other qnsp-xwing-mldsa65 AAAA\n" + Self.line(hashed, key) + "\n"
        let file = KnownHosts(path: "kh", text: text)
        guard case .known(let found) = file.lookup("[server.lab]:22222").1 else { Issue.record("hashed entry not found"); return }
        #expect(found.blob == key.blob)
        guard case .unknown = file.lookup("[server.lab]:22").1 else { Issue.record("wrong port matched"); return }
    }
}
