import Crypto
import QSSHAgent
import Testing

@Suite("Agent with OpenSSH Ed25519 keys")
struct AgentEd25519Tests {
    static let key = Curve25519.Signing.PrivateKey()

    var material: AgentKeyMaterial {
        AgentKeyMaterial(
            type: .ed25519,
            publicKey: Array(Self.key.publicKey.rawRepresentation),
            seed: Array(Self.key.rawRepresentation),
            comment: "me@classic"
        )
    }

    /// An SSH publickey USERAUTH_REQUEST for `blob`, as ssh signs it (RFC 4252 §7).
    func userauth(
        blob: [UInt8],
        user: String = "root",
        algorithm: String = "ssh-ed25519",
        method: String = "publickey"
    ) -> [UInt8] {
        var w = AgentWireWriter()
        w.write(string: [UInt8](repeating: 0xab, count: 32))
        w.write(byte: 50)
        w.write(text: user)
        w.write(text: "ssh-connection")
        w.write(text: method)
        w.write(byte: 1)
        w.write(text: algorithm)
        w.write(string: blob)
        return w.bytes
    }

    @Test("OpenSSH's ADD_IDENTITY encoding round-trips and checks seed against public key")
    func codec() throws {
        let request = AgentRequest.add(material, constraints: AgentConstraints(lifetime: 5))
        #expect(try AgentRequest(frame: request.encoded()) == request)
        var bad = material
        bad.publicKey = Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation)
        var state = AgentState()
        guard case .reply(.failure, _) = state.handle(.add(bad, constraints: AgentConstraints()), now: 0) else {
            Issue.record("a mismatched ed25519 key was accepted")
            return
        }
    }

    @Test("signs an SSH userauth request for the key, verifiable with the public key; refuses other data")
    func sign() throws {
        var state = AgentState()
        guard case .reply(.success, _) = state.handle(.add(material, constraints: AgentConstraints()), now: 0) else {
            Issue.record("add failed")
            return
        }
        let blob = material.keyBlob
        let data = userauth(blob: blob)
        guard case .reply(.signature(let sigBlob), _) = state.handle(.sign(keyBlob: blob, data: data, flags: 0), now: 0)
        else {
            Issue.record("no signature")
            return
        }
        let sig = try AgentKeyFormat.signature(fromBlob: sigBlob, type: .ed25519)
        #expect(Self.key.publicKey.isValidSignature(sig, for: data))
        // OpenSSH 8.9+'s host-bound form, with the server's host key after the key blob.
        var bound = userauth(blob: blob, method: SSHUserauthSigningInput.hostBound)
        var w = AgentWireWriter()
        w.write(string: [UInt8](repeating: 7, count: 51))
        bound += w.bytes
        guard case .reply(.signature, _) = state.handle(.sign(keyBlob: blob, data: bound, flags: 0), now: 0) else {
            Issue.record("no signature for a host-bound request")
            return
        }
        let other = AgentKeyFormat.keyBlob(
            type: .ed25519,
            publicKey: Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation)
        )
        for refused in [
            userauth(blob: other), userauth(blob: blob, method: "hostbased"),
            userauth(blob: blob, algorithm: "ssh-rsa"),
            Array("SSHSIG".utf8) + data, data + [0], userauth(blob: blob, user: ""),
        ] {
            guard case .reply(.failure, _) = state.handle(.sign(keyBlob: blob, data: refused, flags: 0), now: 0) else {
                Issue.record("signed data that is not a userauth request for the key")
                continue
            }
        }
        guard case .reply(.identities(let list), _) = state.handle(.requestIdentities, now: 0) else { return }
        #expect(list == [AgentIdentity(keyBlob: blob, comment: "me@classic")])
    }
}
